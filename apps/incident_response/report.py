"""Terminal output of the alert-storm demo: one table per cycle and the audit-log summary (rich)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from cascadeflow.trace import iter_records, summarise

console = Console(width=max(Console().width, 120))  # keep the tables readable in a CI log


def print_header(label: str, n_alerts: int, budget: float, audit_path: Path) -> None:
    console.rule("[bold]cascadeflow alert storm")
    console.print(f"{n_alerts} alerts, session budget ${budget:.4f} per cycle; {label}")
    console.print(f"audit log: {audit_path}\n")


def _short_reason(reason: str) -> str:
    """'rejected: score=0.39 < 0.60; weakest logprob: ...' -> 'logprob 0.39 < 0.60'."""
    text = reason.removeprefix("rejected: ")
    if "weakest " in text:
        score = text.split(";")[0].removeprefix("score=")
        return f"{text.split('weakest ')[1].split(':')[0]} {score}"
    return text.split(" (")[0][:48]  # a veto: "structure: cut off at the length limit"


def _decision(result) -> str:
    if result.draft_accepted is None:
        return "single model"
    if result.draft_accepted:
        return "draft accepted"
    reasons = [t.get("reason") or "" for t in result.tiers if t.get("decision") == "rejected"]
    return f"escalated ({_short_reason(reasons[0])})" if reasons else "escalated"


def print_cycle(cycle: int, rows: list[dict], session) -> None:
    table = Table(title=f"cycle {cycle}", show_lines=False)
    for col in ("alert", "sev", "model", "decision", "tokens", "cost $", "latency s"):
        table.add_column(col, overflow="fold")
    for row in rows:
        alert = row["alert"]
        if row["queued"]:
            table.add_row(alert["id"], alert["severity"], "-", "[yellow]queued: budget", "-", "-", "-")
            continue
        r = row["result"]
        table.add_row(alert["id"], alert["severity"], r.model, _decision(r), str(r.usage.total_tokens),
                      f"{r.cost_usd:.6f}", f"{r.latency_ms / 1000:.2f}")
    console.print(table)
    s = session.summary()
    console.print(f"cycle {cycle}: {s['calls']} answered, {s['refused']} queued, spent ${s['spent']:.6f} "
                  f"of ${s['limit']:.6f} (remaining ${s['remaining']:.6f})\n")
    answered = [r for r in rows if not r["queued"]]
    if answered:
        sample = answered[0]
        console.print(f"[dim]sample answer for {sample['alert']['id']}:[/dim] {sample['result'].content[:300]}\n")


def print_audit_summary(audit_path: Path) -> None:
    records = list(iter_records(audit_path))
    for by in ("severity", "model"):
        table = Table(title=f"audit log by {by}")
        for col in (by, "calls", "not sent", "cost $", "input tok", "output tok", "p50 latency ms"):
            table.add_column(col)
        for group in summarise(records, by=by):  # p50 over the calls sent; "not sent": refused before sending
            p50 = "-" if group.latency_ms_p50 is None else f"{group.latency_ms_p50:.0f}"
            table.add_row(group.key, str(group.count), str(group.not_sent), f"{group.cost_usd:.6f}",
                          str(group.input_tokens), str(group.output_tokens), p50)
        console.print(table)
    console.print(f"{len(records)} audit records in {audit_path} "
                  f"(inspect with: .venv/bin/cascadeflow trace summary --by severity {audit_path})")
