"""`cascadeflow chat`, `models` and `doctor`: one priced call, the price list, and a configuration check."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cascadeflow.cli import app
from cascadeflow.errors import BudgetExceeded, CascadeflowError, ConfigurationError
from cascadeflow.models import PROVIDERS, as_model_config

console = Console()
DEFAULT_CHAT_MODEL = "local/smollm2"  # needs no key and no network


def _fail(exc: Exception, code: int = 2) -> typer.Exit:
    console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True, highlight=False)
    return typer.Exit(code=code)


@app.command("chat")
def chat_cmd(
    prompt: str = typer.Argument(..., help="what to ask"),
    model: str = typer.Option(DEFAULT_CHAT_MODEL, "--model", "-m", help="provider/model, e.g. groq/llama3-8b-8192"),
    max_tokens: int | None = typer.Option(None, "--max-tokens", help="longest answer, in tokens"),
    temperature: float | None = typer.Option(None, "--temperature", "-t", help="0 for repeatable answers"),
    system: str | None = typer.Option(None, "--system", help="a system prompt"),
    budget: float | None = typer.Option(None, "--budget", help="hard cap for this call, in USD"),
) -> None:
    """Send one message through the cascadeflow pipeline and print the answer, tokens, cost and latency."""
    from cascadeflow.messages import Message, build_request
    from cascadeflow.pricing import usd_to_micro_limit
    from cascadeflow.runtime.pipeline import Runtime
    from cascadeflow.sync import run_sync
    from cascadeflow.trace.audit import open_sinks

    try:
        cfg = as_model_config(model)
        messages = ([Message.system(system)] if system else []) + [Message.user(prompt)]
        request = build_request(messages, max_tokens=max_tokens, temperature=temperature)
        runtime = Runtime(sinks=open_sinks(None))  # the default audit log ($CASCADEFLOW_AUDIT_PATH; off: none)
        call = runtime.new_call(model_requested=cfg.id,
                                budget_limit_micro=usd_to_micro_limit(budget, "--budget") if budget else None)
        try:
            response, record = run_sync(runtime.attempt(cfg, request, call), what="cascadeflow chat")
        except CascadeflowError as exc:
            runtime.finish(call, action="stop" if isinstance(exc, BudgetExceeded) else "error",
                           model_selected=None, response=None, error=exc)
            raise
        runtime.finish(call, action="allow", model_selected=cfg.id, response=response)
    except ConfigurationError as exc:
        raise _fail(exc, 2) from None
    except CascadeflowError as exc:
        raise _fail(exc, 1) from None
    console.print(response.content, markup=False, highlight=False)
    console.print(
        f"[dim]{cfg.id} · {record.input_tokens} in / {record.output_tokens} out tokens · "
        f"${record.cost:.6f} · {record.latency_ms:.0f} ms · finish={response.finish_reason}[/dim]",
        highlight=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceRow:
    model: str
    input: Decimal
    output: Decimal
    cache_read: Decimal
    note: str = ""


def price_rows(provider: str | None = None, search: str | None = None) -> list[PriceRow]:
    """Known models of our providers with USD per million tokens (genai-prices; self-hosted ones at $0)."""
    from genai_prices import data_snapshot

    from cascadeflow.pricing import rates_of_genai_model

    if provider is not None and provider not in PROVIDERS:
        from cascadeflow.errors import UnknownProviderError

        raise UnknownProviderError(provider, list(PROVIDERS))
    by_price_id = {f.price_id: f.name for f in PROVIDERS.values() if f.price_id}
    rows: list[PriceRow] = []
    snapshot = data_snapshot.get_snapshot()
    for entry in snapshot.providers:
        ours = by_price_id.get(entry.id)
        if ours is None or (provider and ours != provider):
            continue
        for info in entry.models:
            model_id = f"{ours}/{info.id}"
            rates = rates_of_genai_model(info)
            note = "context tiers" if rates.tiered else ""
            if search and search.lower() not in model_id.lower() and search.lower() not in (info.name or "").lower():
                # A dated or aliased id (gpt-4o-mini-2024-07-18) is priced through the entry whose match rule
                # takes it: show it under the name the user searched for.
                if not info.is_match(search.lower()):
                    continue
                model_id, note = f"{ours}/{search}", f"priced as {info.id}" + (f", {note}" if note else "")
            rows.append(PriceRow(model=model_id, input=rates.input, output=rates.output,
                                 cache_read=rates.cache_read, note=note))
    for facts in PROVIDERS.values():
        if facts.self_hosted and (provider in (None, facts.name)) and (not search or search in facts.name):
            zero = Decimal(0)
            rows.append(PriceRow(model=f"{facts.name}/*", input=zero, output=zero, cache_read=zero,
                                 note="self-hosted: $0 or compute per hour"))
    return sorted(rows, key=lambda r: r.model)


@app.command("models")
def models_cmd(
    provider: str | None = typer.Option(None, "--provider", "-p", help="only this provider"),
    search: str | None = typer.Option(None, "--search", "-s", help="text the model id must contain"),
    as_json: bool = typer.Option(False, "--json", help="print JSON lines instead of a table"),
) -> None:
    """List known models and their prices in USD per million tokens."""
    from cascadeflow.pricing import price_data_version

    try:
        rows = price_rows(provider, search)
    except ConfigurationError as exc:
        raise _fail(exc) from None
    if as_json:
        for row in rows:
            typer.echo(json.dumps({"model": row.model, "input_per_million": str(row.input),
                                   "output_per_million": str(row.output),
                                   "cache_read_per_million": str(row.cache_read), "note": row.note}))
        return
    if not console.is_terminal:  # piped or redirected: whole names, one tab-separated row per model
        typer.echo("model\tinput_per_million\toutput_per_million\tcache_read_per_million\tnote")
        for row in rows:
            typer.echo("\t".join((row.model, _money(row.input), _money(row.output), _money(row.cache_read),
                                    row.note)))
        return
    table = Table(title=f"prices per million tokens ({price_data_version()})")
    for column in ("model", "input $", "output $", "cached input $", "note"):
        table.add_column(column, justify="right" if column.endswith("$") else "left",
                         overflow="fold" if column == "model" else "ellipsis")
    for row in rows:
        table.add_row(row.model, _money(row.input), _money(row.output), _money(row.cache_read), row.note)
    console.print(table)
    console.print(f"{len(rows)} models", highlight=False)


def _money(value: Decimal) -> str:
    return f"{value.normalize():f}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    name: str
    ok: bool | None  # None: informational, not a pass/fail
    detail: str


def safe_url(url: str) -> str:
    """A URL with its credentials (password, query values, fragment) redacted, so doctor never prints one."""
    from cascadeflow.trace.redact import redact_url

    return redact_url(url)


def provider_checks(env: dict[str, str], ping: bool) -> list[Check]:
    from cascadeflow.providers.endpoint import resolve_endpoint

    checks = []
    for facts in PROVIDERS.values():
        if facts.wire in ("local", "replay"):
            continue
        key_state = "set" if facts.key_env and env.get(facts.key_env) else "not set"
        try:
            url = resolve_endpoint(facts.name, api_key="unused", env=env).base_url
        except ConfigurationError as exc:
            checks.append(Check(name=facts.name, ok=False, detail=str(exc)))
            continue
        ok: bool | None = key_state == "set" if facts.key_required else None
        detail = f"{facts.key_env}: {key_state} · {safe_url(url)}"
        if ping:
            reached = _reachable(url)
            detail += f" · {reached}"
            if not facts.key_required and reached.startswith("reachable"):
                ok = True
        checks.append(Check(name=facts.name, ok=ok, detail=detail))
    return checks


def _reachable(url: str) -> str:
    import httpx

    try:
        status = httpx.get(url + "/models", timeout=3.0).status_code  # no key sent: any HTTP answer will do
    except httpx.HTTPError as exc:
        return f"unreachable ({type(exc).__name__})"
    return f"reachable (HTTP {status})"


def local_model_check(model_path: Path | None) -> Check:
    from cascadeflow.providers.local import LocalTokenizer, default_model_path

    try:
        path = model_path or default_model_path()
        if not path.is_file():
            return Check(name="local model", ok=False, detail=f"file not found: {path}")
        tokens = LocalTokenizer(path).count_text("hello")  # loads the vocabulary: proves the file is readable
    except ConfigurationError as exc:
        return Check(name="local model", ok=False, detail=str(exc))
    return Check(name="local model", ok=tokens > 0,
                 detail=f"{path} ({path.stat().st_size // 1_000_000} MB, loadable)")


def backend_check(name: str, url: str) -> Check:
    try:
        if name == "redis":
            import redis

            redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
        else:
            import psycopg

            psycopg.connect(url, connect_timeout=2).close()
    except ImportError:
        return Check(name=name, ok=False, detail=f'client not installed: pip install "cascadeflow[{name}]"')
    except Exception as exc:  # noqa: BLE001  any failure means "not reachable"; the type says why
        return Check(name=name, ok=False, detail=f"{safe_url(url)} unreachable ({type(exc).__name__})")
    return Check(name=name, ok=True, detail=f"{safe_url(url)} reachable")


def audit_spool_check(env: dict[str, str]) -> Check:
    """How many audit records wait in the spool: records a failing audit sink refused (docs/reliability.md)."""
    from cascadeflow.trace.audit import default_spool_path
    from cascadeflow.trace.delivery import count_spooled

    path = default_spool_path(env)
    waiting = count_spooled(path)
    if waiting == 0:
        return Check(name="audit spool", ok=True,
                     detail=f"{path}: empty (no record refused by an audit sink)")
    return Check(name="audit spool", ok=False,
                 detail=f"{path}: {waiting} records an audit sink refused; append them to "
                        "the audit log once it is writable again, then remove the spool")


LOCAL_MODEL_OPTION = typer.Option(None, "--local-model", help="GGUF file to check instead of the bundled SmolLM2")


@app.command("doctor")
def doctor_cmd(
    ping: bool = typer.Option(False, "--ping", help="also contact each provider's base URL (no key is sent)"),
    local_model: Path | None = LOCAL_MODEL_OPTION,
    redis_url: str | None = typer.Option(None, "--redis", envvar="CASCADEFLOW_REDIS_URL",
                                            help="Redis URL of a budget ledger to check"),
    postgres_url: str | None = typer.Option(None, "--postgres", envvar="CASCADEFLOW_POSTGRES_URL",
                                               help="PostgreSQL URL of a budget ledger to check"),
) -> None:
    """Show what is configured (never printing a key) and exit non-zero when no model is usable."""
    import cascadeflow
    from cascadeflow.pricing import price_data_version

    console.print(f"cascadeflow {cascadeflow.__version__} · Python {platform.python_version()} · "
                  f"{price_data_version()}", highlight=False)
    env = dict(os.environ)
    checks = provider_checks(env, ping) + [local_model_check(local_model)]
    checks += [backend_check(name, url) for name, url in (("redis", redis_url), ("postgres", postgres_url)) if url]
    checks.append(audit_spool_check(env))
    table = Table()
    for column in ("check", "status", "detail"):
        table.add_column(column)
    for check in checks:
        status = {True: "[green]ok[/green]", False: "[red]missing[/red]", None: "[dim]-[/dim]"}[check.ok]
        table.add_row(check.name, status, escape(check.detail))
    console.print(table)
    usable = [c.name for c in checks if c.ok and (c.name in PROVIDERS or c.name == "local model")]
    if not usable:
        console.print("[red]nothing usable:[/red] " + escape(
            'set a provider key (e.g. OPENAI_API_KEY) or install the local model: pip install "cascadeflow[local]"'),
            highlight=False)
        raise typer.Exit(code=1)
    console.print(f"usable: {', '.join(usable)}", highlight=False)
