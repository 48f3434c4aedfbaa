"""`cascadeflow report`: cost, calls, draft acceptance and savings per any grouping of the audit logs, or the
monthly report with its recommendations; as a table, JSON, CSV or a self-contained HTML page."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cascadeflow.cli import app
from cascadeflow.errors import ConfigurationError
from cascadeflow.trace.audit import AUDIT_PATH_ENV, default_audit_path
from cascadeflow.trace.reader import parse_time


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    html = "html"


SourcesArg = Annotated[list[str] | None, typer.Argument(
    help="Audit logs: JSONL files or globs ('logs/*/audit.jsonl*'), directories, SQLite databases (.db, "
         "sqlite:///...), postgresql://user@host/db?table=... URLs; any mix. Default: "
         f"${AUDIT_PATH_ENV} or {default_audit_path({})}", show_default=False)]


def _bound(value: str | None) -> str | None:
    return parse_time(value).isoformat() if value else None


def _write(text: str, output: Path | None) -> None:
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)


@app.command("report")
def report_command(
    sources: SourcesArg = None,
    by: Annotated[list[str] | None, typer.Option(
        "--by", help="Group key, repeatable: model, user, agent, action, day, month, hour, or a metadata key "
                     "(feature, task_type, ...). Default: model.")] = None,
    since: Annotated[str | None, typer.Option(help="From this time: ISO-8601 or a look-back (7d, 12h).")] = None,
    until: Annotated[str | None, typer.Option(help="Up to this time: ISO-8601 or a look-back.")] = None,
    month: Annotated[str | None, typer.Option(
        help="The monthly report of this month (YYYY-MM, UTC) with recommendations, instead of --by.")] = None,
    baseline: Annotated[str | None, typer.Option(
        help="Savings against this model (provider/model). Default: the costliest model the calls reached.")] = None,
    budget: Annotated[float | None, typer.Option(help="With --month: the month's budget in USD.")] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file.")] = None,
    limit: Annotated[int | None, typer.Option(help="Table: at most this many rows.")] = None,
) -> None:
    """Report cost, calls, draft acceptance and savings over the audit logs (read through DuckDB)."""
    from cascadeflow.reports import html, monthly, query, render

    listed = sources or [str(default_audit_path())]
    try:
        if month is not None:
            found = monthly.monthly_report(listed, month, baseline_model=baseline, budget=budget)
            texts = {Format.table: lambda: found.to_text(),
                     Format.json: lambda: json.dumps(found.to_dict(), indent=2, ensure_ascii=False),
                     Format.csv: lambda: render.to_csv(found.by_model),
                     Format.html: lambda: html.to_html(found.by_model, daily=found.daily,
                                                       title=f"cascadeflow monthly cost report: {month}",
                                                       recommendations=[r.message for r in found.recommendations])}
            _write(texts[fmt](), output)
            return
        keys = by or ["model"]
        con = query.open_audit(listed)
        try:
            result = query.report(listed, by=keys, since=_bound(since), until=_bound(until),
                                  baseline_model=baseline, con=con)
            daily = query.report(listed, by="day", since=_bound(since), until=_bound(until),
                                 baseline_model=result.baseline_model, con=con) if fmt is Format.html else None
        finally:
            con.close()
    except ConfigurationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if fmt is Format.table and output is None:
        Console().print(render.to_table(result, limit))
        return
    texts = {Format.table: lambda: render.table_text(result, limit), Format.json: lambda: render.to_json(result),
             Format.csv: lambda: render.to_csv(result), Format.html: lambda: html.to_html(result, daily=daily)}
    _write(texts[fmt](), output)
