"""`cascadeflow serve` (the gateway) and `cascadeflow keys create|list|rotate|revoke` (its virtual keys)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from cascadeflow.cli import app
from cascadeflow.errors import ConfigurationError

keys_app = typer.Typer(no_args_is_help=True, help="Virtual keys of the gateway: create, list, rotate, revoke.")
app.add_typer(keys_app, name="keys")

ConfigOpt = Annotated[str | None, typer.Option("--config", "-c", help="The gateway configuration (.toml or .yaml).")]
StoreOpt = Annotated[str | None, typer.Option("--store", help="Key store URL (default: `keys` of --config).")]


def _fail(exc: ConfigurationError) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(2)


@app.command("serve")
def serve(config: ConfigOpt = None,
          host: Annotated[str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")] = None,
          port: Annotated[int | None, typer.Option(help="Port (default 8080).")] = None) -> None:
    """Run the OpenAI- and Anthropic-compatible gateway."""
    from cascadeflow.gateway.config import gateway_config, load_config
    from cascadeflow.gateway.server import check_bind
    from cascadeflow.gateway.server import serve as run

    try:
        settings = load_config(config, host=host, port=port) if config else gateway_config(None, host=host, port=port)
        check_bind(settings)
    except ConfigurationError as exc:
        raise _fail(exc) from None
    if settings.keys is None:
        typer.echo("no key store configured: serving loopback clients only and accepting any client key", err=True)
    typer.echo(f"cascadeflow gateway on http://{settings.host}:{settings.port} "
               f"({len(settings.models)} model names)", err=True)
    run(settings)


def _admin(config: str | None, store: str | None):
    from cascadeflow.gateway.config import gateway_config, load_config
    from cascadeflow.gateway.keys import KeyAdmin
    from cascadeflow.gateway.keystores import open_key_store

    settings = load_config(config) if config else gateway_config(None)
    url = store or settings.keys
    if url is None:
        raise ConfigurationError("no key store: pass --store sqlite:///keys.db (or redis://, postgresql://) or a "
                                 "--config whose gateway table sets keys")
    return KeyAdmin(open_key_store(url), settings.hashing_secret() or "")


@keys_app.command("create")
def create(name: Annotated[str, typer.Argument(help="A name for the key (who or what uses it).")],
           config: ConfigOpt = None, store: StoreOpt = None,
           model: Annotated[list[str] | None, typer.Option("--model", help="An allowed model name (repeat).")] = None,
           per_request: Annotated[float | None, typer.Option(help="USD cap per request.")] = None,
           per_day: Annotated[float | None, typer.Option(help="USD budget per day.")] = None,
           per_month: Annotated[float | None, typer.Option(help="USD budget per month.")] = None,
           rpm: Annotated[int | None, typer.Option(help="Requests per minute.")] = None,
           tpm: Annotated[int | None, typer.Option(help="Tokens per minute.")] = None,
           team: Annotated[str | None, typer.Option(help="Team, recorded with every call.")] = None,
           user: Annotated[str | None, typer.Option(help="User, recorded with every call.")] = None,
           feature: Annotated[str | None, typer.Option(help="Feature, recorded with every call.")] = None) -> None:
    """Create a key; the key itself is printed once and never stored."""
    metadata = {k: v for k, v in (("team", team), ("user", user), ("feature", feature)) if v}
    try:
        record, token = _admin(config, store).create(
            name, models=tuple(model or ()), per_request_usd=per_request, per_day_usd=per_day,
            per_month_usd=per_month, rpm=rpm, tpm=tpm, metadata=metadata)
    except ConfigurationError as exc:
        raise _fail(exc) from None
    typer.echo(json.dumps({"id": record.id, "key": token}))


@keys_app.command("list")
def list_keys(config: ConfigOpt = None, store: StoreOpt = None) -> None:
    """Every key with its limits and metadata (never a secret), one JSON object per line."""
    try:
        keys = _admin(config, store).list()
    except ConfigurationError as exc:
        raise _fail(exc) from None
    for key in keys:
        typer.echo(json.dumps(key.public(), sort_keys=True))


@keys_app.command("rotate")
def rotate(key_id: str, config: ConfigOpt = None, store: StoreOpt = None) -> None:
    """A new secret for a key (budgets and spend carry over); the old key stops working."""
    try:
        record, token = _admin(config, store).rotate(key_id)
    except ConfigurationError as exc:
        raise _fail(exc) from None
    typer.echo(json.dumps({"id": record.id, "key": token}))


@keys_app.command("revoke")
def revoke(key_id: str, config: ConfigOpt = None, store: StoreOpt = None) -> None:
    """Revoke a key (every gateway process refuses it within its key cache time, 5 s by default)."""
    try:
        _admin(config, store).revoke(key_id)
    except ConfigurationError as exc:
        raise _fail(exc) from None
    typer.echo(json.dumps({"id": key_id, "revoked": True}))
