"""What each page shows, as a plain dict for its template: built from the data directory (and the running
investigations, when the live app has them). The live pages and the static snapshot use the same builders."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .audit_view import AuditQuery, audit_records, audit_row, audit_total
from .datadir import DataDir, EventIndex
from .investigation_view import investigation_view, panel_rows
from .overview import (
    budget_view,
    incident_rows,
    memory_view,
    queue_rows,
    scenario_rows,
    totals,
)

AUDIT_PAGE_ROWS = 500  # the page shows the newest rows; the exports carry every matching record


def live_events(index: EventIndex, running: Mapping[str, Any] | None = None) -> dict[str, list[Mapping[str, Any]]]:
    """Every investigation's events: the file, with running investigations' in-memory logs on top (the
    journal may be a line behind)."""
    grouped: dict[str, list[Mapping[str, Any]]] = dict(index.refresh())
    for investigation_id, log in (running or {}).items():
        grouped[investigation_id] = [e.to_dict() for e in log.events]
    return grouped


def incidents_context(data: DataDir, scenario_root: Path, grouped: Mapping[str, list[Mapping[str, Any]]], *,
                      memory_store: Any = None, load_scenario: Any = None) -> dict[str, Any]:
    rows = incident_rows(data.read_incidents(), grouped)
    memory = memory_view(data, store=memory_store)
    recalled: dict[str, Mapping[str, Any]] = {}  # each remembered incident once, at its latest recall
    for e in sorted((e for events in grouped.values() for e in events if e.get("type") == "memory_hit"),
                    key=lambda e: float(e.get("at") or 0)):
        recalled.pop(str(e.get("incident_id")), None)
        recalled[str(e.get("incident_id"))] = e
    return {"page": "incidents", "incidents": rows, "scenarios": scenario_rows(scenario_root, rows, load=load_scenario),
            "memory": memory, "recalled": list(recalled.values())[-6:][::-1], "cost_rows": panel_rows(totals(grouped)),
            "run": data.read_run()}


def investigation_context(investigation_id: str, events: list[Mapping[str, Any]], *, live: bool) -> dict[str, Any]:
    view = investigation_view(events, live=live)
    return {"page": "investigation", "inv": view, "investigation_id": investigation_id}


def memory_context(data: DataDir, query: str | None = None, *, store: Any = None) -> dict[str, Any]:
    return {"page": "memory", "memory": memory_view(data, query, store=store)}


def budget_context(data: DataDir, grouped: Mapping[str, list[Mapping[str, Any]]],
                   daily_budget_usd: float | None, *, ledger: Any = None) -> dict[str, Any]:
    return {"page": "budget", "budget": budget_view(data, grouped, daily_budget_usd=daily_budget_usd, ledger=ledger),
            "queue": queue_rows(data), "cost_rows": panel_rows(totals(grouped))}


def audit_context(data: DataDir, query: AuditQuery) -> dict[str, Any]:
    records = audit_records(data, query)
    return {"page": "audit", "query": query, "params": query.as_params(), "count": len(records),
            "total_usd": audit_total(records), "rows": [audit_row(r) for r in records[-AUDIT_PAGE_ROWS:]][::-1],
            "shown": min(len(records), AUDIT_PAGE_ROWS)}
