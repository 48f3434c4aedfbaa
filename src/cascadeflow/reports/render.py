"""A Report as JSON, CSV rows, or a rich table (the HTML page is `reports.html`)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from cascadeflow.reports.query import Report, ReportRow

CSV_FIGURES = ("calls", "cost_usd", "input_tokens", "output_tokens", "cascaded", "accepted", "acceptance",
               "errors", "cache_hits", "cache_saved_usd", "latency_ms_avg", "baseline_usd", "savings_usd",
               "savings_pct")


def to_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False)


def to_csv(report: Report) -> str:
    """One row per group (the group keys first), then a `total` row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*report.by, *CSV_FIGURES])
    for row in (*report.rows, report.total):
        key = list(row.key) if row is not report.total else ["total", *[""] * (len(report.by) - 1)]
        writer.writerow([*key, *_figures(row)])
    return out.getvalue()


def _figures(row: ReportRow) -> list[Any]:
    data = row.to_dict(tuple(f"_{i}" for i in range(len(row.key))))
    return ["" if data[name] is None else data[name] for name in CSV_FIGURES]


def money(value: float | None) -> str:
    if value is None:
        return "-"
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}" if abs(value) >= 100 else f"{sign}${abs(value):,.4f}"


def share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def table_rows(report: Report, limit: int | None = None) -> list[list[str]]:
    """The report's rows as display strings (group keys, calls, cost, acceptance, savings, savings %)."""
    rows = report.rows if limit is None else report.rows[:limit]
    out = [[*r.key, f"{r.calls:,}", money(r.cost_usd), share(r.acceptance), f"{r.cache_hits:,}",
            money(r.savings_usd), share(r.savings_pct)] for r in rows]
    t = report.total
    out.append(["total", *[""] * (len(report.by) - 1), f"{t.calls:,}", money(t.cost_usd), share(t.acceptance),
                f"{t.cache_hits:,}", money(t.savings_usd), share(t.savings_pct)])
    return out


TABLE_FIGURES = ("calls", "cost", "acceptance", "cache hits", "savings", "savings %")


def to_table(report: Report, limit: int | None = None) -> Any:
    """A rich Table of the report (the CLI prints it)."""
    from rich.table import Table

    title = f"cost by {', '.join(report.by)}"
    if report.baseline_model:
        title += f" (savings against {report.baseline_model})"
    table = Table(title=title)
    for name in report.by:
        table.add_column(name, overflow="fold")
    for name in TABLE_FIGURES:
        table.add_column(name, justify="right")
    rows = table_rows(report, limit)
    for i, cells in enumerate(rows):
        table.add_row(*cells, end_section=i == len(rows) - 2)
    return table


def table_text(report: Report, limit: int | None = None, width: int = 120) -> str:
    """The table as plain text (for a file)."""
    from rich.console import Console

    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(to_table(report, limit))
    return console.export_text()
