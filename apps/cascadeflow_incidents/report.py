"""Terminal output of the incident storm (rich): each investigation as it finishes, each budget day, the
summary table."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from .dispatch import DayResult
from .investigation import InvestigationReport
from .storm import StormIncident
from .storm_summary import StormSummary

console = Console(width=max(Console().width, 120))  # keep the tables readable in a CI log


def print_header(label: str, alerts: int, incidents: int, investigation_budget: float, daily_budget: float,
                 data_dir: Path) -> None:
    console.rule("[bold]cascadeflow incident storm")
    console.print(f"{alerts} alerts arrived as Alertmanager webhooks: {incidents} incidents once grouped")
    console.print(f"models: {label}")
    console.print(f"budget: ${daily_budget:.6f} per day, ${investigation_budget:.6f} per investigation; "
                  f"data directory: {data_dir}\n")


def print_investigation(incident: StormIncident, report: InvestigationReport) -> None:
    d = report.diagnosis
    tiers = ", ".join(f"{tier} {n}" for tier, n in sorted(report.spend.calls_by_tier.items())) or "no model call"
    recalled = sum(1 for e in report.log.events if e.type == "memory_hit")
    console.print(f"  [{_colour(incident.severity)}]{incident.severity:>4}[/] {incident.incident_id:<26} "
                  f"{d.category:<19} ({d.author.split('/')[-1]}) {tiers}, ${report.spend.total:.6f}, "
                  f"{recalled} memories" + (f" [yellow]stopped by {report.stopped_by}[/]" if report.stopped_by else ""),
                  highlight=False, overflow="ellipsis", no_wrap=True)


def _colour(severity: str) -> str:
    return {"P0": "bold red", "P1": "red", "P2": "yellow", "P3": "cyan"}.get(severity, "dim")


def print_day(result: DayResult) -> None:
    console.print(f"day {result.day}: {len(result.investigated)} investigated, {len(result.queued)} waiting in the "
                  f"queue, spent ${result.spent_usd:.6f} of ${result.limit_usd:.6f}"
                  + (f", {len(result.failed)} failed (kept queued)" if result.failed else "") + "\n")


def print_summary(summary: StormSummary, seconds: float) -> None:
    table = Table(title="incident storm", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    saved = f" ({summary.saved_share:.0%} less)" if summary.premium_usd else ""
    rows = [
        ("alerts received (webhook alerts)", str(summary.alerts)),
        ("incidents (duplicates grouped)", str(summary.incidents)),
        ("investigated", str(summary.investigated)),
        ("queued by the day's budget / drained later", f"{summary.queued} / {summary.drained}"),
        ("still queued", str(summary.still_queued)),
        ("root causes found (+ healthy)", f"{summary.root_causes} (+ {summary.healthy})"),
        ("budget days", str(len(summary.days))),
        ("model calls", str(summary.calls)),
        ("cost", f"${summary.cost_usd:.6f}"),
        (f"all-premium (each call answered by {summary.premium_model})", f"${summary.premium_usd:.6f}{saved}"),
        ("per investigated incident / all-premium",
         f"${summary.cost_per_incident:.6f} / ${summary.premium_per_incident:.6f}"),
        ("audit records / model answers", f"{summary.audit_records} / {summary.model_answers}"),
        ("wall time", f"{seconds:.0f} s"),
    ]
    for row in rows:
        table.add_row(*row)
    console.print(table)
    calls = Table(title="calls per model")
    for col in ("tier", "model", "calls", "cost $"):
        calls.add_column(col)
    for m in summary.by_model:
        calls.add_row(m.tier, m.model, str(m.calls), f"{m.cost_usd:.6f}")
    console.print(calls)


def print_no_snapshot(reason: Exception) -> None:
    console.print(f"[yellow]no dashboard snapshot:[/yellow] {reason}")


def print_paths(data_dir: Path, snapshot: Path | None) -> None:
    console.print(f"data directory: {data_dir} (show it live: make serve)")
    if snapshot is not None:
        console.print(f"dashboard snapshot: {snapshot} (opens without a server)")
