"""`cascadeflow trace`: tail, filter, summarise and export the audit log (JSONL with rotated files, or SQLite)."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cascadeflow.cli import app
from cascadeflow.errors import ConfigurationError
from cascadeflow.trace.audit import AUDIT_PATH_ENV, default_audit_path
from cascadeflow.trace.reader import (
    GroupSummary,
    RecordFilter,
    SkippedLine,
    follow,
    is_sqlite,
    iter_records,
    last_records,
    parse_time,
    summarise,
    total,
)

trace_app = typer.Typer(no_args_is_help=True, help="Read the audit log: tail, filter, summarise, export.")
app.add_typer(trace_app, name="trace")

PathArg = Annotated[str | None, typer.Argument(
    help=f"Audit log (JSONL, or .db / sqlite:///... for SQLite). Default: ${AUDIT_PATH_ENV} or "
         f"{default_audit_path({})}", show_default=False)]
RunOpt = Annotated[str | None, typer.Option("--run", help="Only this run id.")]
UserOpt = Annotated[str | None, typer.Option("--user", help="Only this user id.")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="Only this model (wildcards: 'groq/*').")]
ActionOpt = Annotated[str | None, typer.Option("--action", help="Only this action (allow, stop, ...).")]
SinceOpt = Annotated[str | None, typer.Option("--since", help="From this time: ISO-8601 or a look-back (15m, 2h, 7d).")]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Up to this time: ISO-8601 or a look-back.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print raw JSON lines.")]

CSV_COLUMNS = ("timestamp", "request_id", "run_id", "user_id", "agent_id", "mode", "action", "model_requested",
               "model_selected", "routing_reason", "input_tokens", "output_tokens", "cost_usd", "latency_ms",
               "budget_remaining", "price_version", "error", "attempts", "tiers")
NOT_METADATA = set(CSV_COLUMNS) | {"metadata", "prompt", "answer"}


def _source(path: str | None) -> str:
    return path if path else str(default_audit_path())


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(2)


def _report_skipped(skipped: list[SkippedLine]) -> None:
    if not skipped:
        return
    typer.echo(f"warning: skipped {len(skipped)} unreadable line(s) (torn, corrupt or of the wrong shape):", err=True)
    for entry in skipped[:10]:
        typer.echo(f"  {entry}", err=True)
    if len(skipped) > 10:
        typer.echo(f"  ... and {len(skipped) - 10} more", err=True)


def _filter(run: str | None, user: str | None, model: str | None, action: str | None, since: str | None,
            until: str | None) -> RecordFilter:
    return RecordFilter(run_id=run, user_id=user, model=model, action=action,
                        since=parse_time(since) if since else None, until=parse_time(until) if until else None)


def format_line(record: dict[str, Any]) -> str:
    """One human-readable line per record."""
    model = record.get("model_selected") or record.get("model_requested") or "-"
    metadata = record.get("metadata") or {}
    extra = " ".join(f"{k}={v}" for k, v in metadata.items() if isinstance(v, (str, int, float)))
    remaining = record.get("budget_remaining")
    budget = f" left=${remaining:.4f}" if isinstance(remaining, (int, float)) else ""
    error = f" error={record['error']}" if record.get("error") else ""
    return (f"{record.get('timestamp', '-')}  {record.get('action', '-'):<12} {model:<28} "
            f"${float(record.get('cost_usd') or 0):.6f}  {record.get('input_tokens', 0)}+"
            f"{record.get('output_tokens', 0)} tok  {float(record.get('latency_ms') or 0):.0f} ms{budget}  "
            f"run={record.get('run_id') or '-'} req={record.get('request_id', '-')}"
            f"{('  ' + extra) if extra else ''}{error}")


def _print(records: Iterable[dict[str, Any]], as_json: bool) -> int:
    count = 0
    for record in records:
        typer.echo(json.dumps(record, ensure_ascii=False) if as_json else format_line(record))
        count += 1
    return count


@trace_app.command()
def tail(path: PathArg = None,
         lines: Annotated[int, typer.Option("-n", "--lines", min=0, help="How many records.")] = 10,
         follow_: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new records.")] = False,
         idle_exit: Annotated[float | None, typer.Option(
             help="With --follow: stop after this many seconds without a new record.")] = None,
         as_json: JsonOpt = False) -> None:
    """Print the last records of the audit log."""
    source = _source(path)
    skipped: list[SkippedLine] = []
    try:
        if follow_ and is_sqlite(source):
            raise ConfigurationError("--follow reads JSONL logs only")
        # following starts before the tail is read so nothing written in between is missed; records that
        # land in both are printed once
        stream = follow(source, idle_exit_s=idle_exit, skipped=skipped) if follow_ else None
        shown = last_records(source, lines, skipped)
        _print(shown, as_json)
        if stream is not None:
            printed = {r.get("request_id") for r in shown}
            _print((r for r in stream if r.get("request_id") not in printed), as_json)
    except ConfigurationError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:
        pass
    _report_skipped(skipped)


@trace_app.command("filter")
def filter_(path: PathArg = None, run: RunOpt = None, user: UserOpt = None, model: ModelOpt = None,
            action: ActionOpt = None, since: SinceOpt = None, until: UntilOpt = None,
            as_json: JsonOpt = False) -> None:
    """Print the records matching every given condition."""
    skipped: list[SkippedLine] = []
    try:
        where = _filter(run, user, model, action, since, until)
        count = _print(iter_records(_source(path), skipped, where), as_json)
    except ConfigurationError as exc:
        raise _fail(exc) from None
    typer.echo(f"{count} record(s)", err=True)
    _report_skipped(skipped)


@trace_app.command()
def summary(path: PathArg = None,
            by: Annotated[str, typer.Option(
                "--by", help="Group by model, action, user_id, run_id, or any metadata key (severity, ...).")] = "model",
            run: RunOpt = None, user: UserOpt = None, model: ModelOpt = None, action: ActionOpt = None,
            since: SinceOpt = None, until: UntilOpt = None, as_json: JsonOpt = False) -> None:
    """Count, cost, tokens and latency per group."""
    skipped: list[SkippedLine] = []
    try:
        where = _filter(run, user, model, action, since, until)
        records = list(iter_records(_source(path), skipped, where))
    except ConfigurationError as exc:
        raise _fail(exc) from None
    groups = summarise(records, by=by)
    overall = total(records)
    if as_json:
        typer.echo(json.dumps({"by": by, "groups": [g.to_dict() for g in groups],
                               "total": overall.to_dict() if overall else None}, indent=2))
    else:
        _summary_table(by, groups, overall)
    _report_skipped(skipped)


def _summary_table(by: str, groups: list[GroupSummary], overall: GroupSummary | None) -> None:
    table = Table(title=f"audit summary by {by}")
    for column in (by, "calls", "not sent", "cost USD", "input tok", "output tok", "p50 ms", "p95 ms", "errors"):
        table.add_column(column, justify="left" if column == by else "right")
    rows = [*groups, overall] if overall is not None else []
    for index, group in enumerate(rows):
        table.add_row(group.key, str(group.count), str(group.not_sent), f"{group.cost_usd:.6f}",
                      str(group.input_tokens), str(group.output_tokens), _ms(group.latency_ms_p50),
                      _ms(group.latency_ms_p95), str(group.errors), end_section=index == len(rows) - 2)
    Console(width=120, soft_wrap=True).print(table)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"  # None: no call of the group was sent


@trace_app.command()
def export(output: Annotated[Path, typer.Option("-o", "--output", help="File to write.")],
           path: PathArg = None,
           fmt: Annotated[str, typer.Option("--format", help="csv or jsonl.")] = "csv",
           run: RunOpt = None, user: UserOpt = None, model: ModelOpt = None, action: ActionOpt = None,
           since: SinceOpt = None, until: UntilOpt = None) -> None:
    """Write the (filtered) records to a CSV or JSONL file."""
    skipped: list[SkippedLine] = []
    try:
        if fmt not in ("csv", "jsonl"):
            raise ConfigurationError(f"--format must be csv or jsonl, got {fmt!r}")
        where = _filter(run, user, model, action, since, until)
        records = list(iter_records(_source(path), skipped, where))
    except ConfigurationError as exc:
        raise _fail(exc) from None
    output.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        write_csv(records, output)
    else:
        with output.open("w", encoding="utf-8") as out:
            out.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    typer.echo(f"wrote {len(records)} record(s) to {output}", err=True)
    _report_skipped(skipped)


def write_csv(records: list[dict[str, Any]], output: Path) -> None:
    """Fixed columns, then one column per caller metadata key (alert_id, severity, ...)."""
    extra = sorted({k for r in records for k in (r.get("metadata") or {}) if k not in NOT_METADATA})
    with output.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow([*CSV_COLUMNS, *extra])
        for record in records:
            metadata = record.get("metadata") or {}
            row = [_cell(record.get(c)) for c in CSV_COLUMNS[:-2]]
            tiers = record.get("tiers") or []
            row += [len(tiers), json.dumps(tiers, ensure_ascii=False)]
            row += [_cell(metadata.get(k)) for k in extra]
            writer.writerow(row)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return value


if __name__ == "__main__":  # pragma: no cover - `python -m cascadeflow.cli.trace`
    sys.exit(trace_app())
