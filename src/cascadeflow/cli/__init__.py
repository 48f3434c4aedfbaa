"""The `cascadeflow` command line: the only code that prints. Sub-commands live in one module each."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="cascadeflow: route, cascade, budget and audit LLM calls.")


def _print_version(asked: bool) -> None:
    if asked:
        from cascadeflow import __version__

        typer.echo(f"cascadeflow {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="print the version and exit"),
) -> None:
    """cascadeflow: route, cascade, budget and audit LLM calls."""


def _register() -> None:
    # Each module adds its commands to `app` (or a sub-app); imported here so `cascadeflow --help` lists all.
    from cascadeflow.cli import basic  # noqa: F401  chat, models, doctor
    for optional in ("cache", "gateway", "metrics", "replay", "report", "trace"):
        try:
            __import__(f"cascadeflow.cli.{optional}")
        except ModuleNotFoundError as exc:
            if exc.name != f"cascadeflow.cli.{optional}":
                raise


def main() -> None:
    _register()
    app()
