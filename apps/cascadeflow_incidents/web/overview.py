"""The dashboard's other views, read from a data directory: the incident list, the scenarios not yet
investigated, the memory and its reflection insights, spend against the day's budget, and the deferred
queue. A file that does not exist yet is an empty view; nothing here writes to the directory."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .datadir import DataDir
from .investigation_view import SEVERITY_TONES, cost_panel

log = logging.getLogger(__name__)
SEVERITY_ORDER = {"P0": 0, "P1": 1, "P2": 2, "P3": 3, "INFO": 4}


def events_by_investigation(events: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    grouped: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for e in events:
        grouped[str(e.get("investigation_id"))].append(e)
    return dict(grouped)


def incident_rows(incidents: Mapping[str, Mapping[str, Any]],
                  grouped: Mapping[str, list[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """One row per incident: its current state, and for investigated ones the category and cost. An
    investigation in `events.jsonl` without an incident line is shown as its own incident."""
    rows, covered = [], set()
    for incident_id, line in incidents.items():
        investigation = line.get("investigation_id")
        covered.add(investigation)
        rows.append(_row(incident_id, line.get("alert") or {}, str(line.get("status")), line.get("reason") or "",
                         investigation, grouped.get(str(investigation), []), line.get("first_at"),
                         line.get("scenario")))
    for investigation, events in grouped.items():
        if investigation in covered:
            continue
        started = next((e for e in events if e.get("type") == "investigation_started"), {})
        done = any(e.get("type") == "investigation_finished" for e in events)
        rows.append(_row(investigation, started.get("alert") or {}, "resolved" if done else "investigating", "",
                         investigation, events, started.get("at")))
    rows.sort(key=lambda r: (r["status"] not in ("investigating", "queued", "received"),
                             SEVERITY_ORDER.get(r["severity"], 5), -(r["at"] or 0)))
    return rows


def _row(incident_id: str, alert: Mapping[str, Any], status: str, reason: str, investigation: Any,
         events: list[Mapping[str, Any]], at: Any, scenario: Any = None) -> dict[str, Any]:
    finished = next((e for e in events if e.get("type") == "investigation_finished"), None)
    severity = str(alert.get("severity") or "INFO")
    return {"incident_id": incident_id, "investigation_id": investigation, "severity": severity,
            "tone": SEVERITY_TONES.get(severity, "info"), "title": alert.get("title") or alert.get("name") or "",
            "name": alert.get("name") or "", "fingerprint": alert.get("fingerprint"), "service": alert.get("service") or "", "status": status,
            "reason": reason, "scenario": scenario, "category": finished.get("category") if finished else None,
            "cost_usd": cost_panel(events)["total_usd"] if events else 0.0, "at": at,
            "when": _clock(at)}


def _clock(at: Any) -> str:
    try:
        return datetime.fromtimestamp(float(at), tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError, OverflowError, OSError):
        return ""


def scenario_rows(root: Path, rows: list[dict[str, Any]], *, load: Any = None) -> list[dict[str, Any]]:
    """The recorded scenarios under `root` no incident comes from yet: matched by the scenario an incident
    line names (a replay may add labels, such as the storm's `cluster`, that change the fingerprint),
    else by the alert's fingerprint; `load` reads one folder (default `load_scenario`; the live app
    passes its cache)."""
    from ..intake import find_scenarios, load_scenario

    load = load or load_scenario
    if not root.is_dir():
        return []
    seen = {r.get("fingerprint") for r in rows}
    replayed = {r.get("scenario") for r in rows}
    left = []
    for folder in find_scenarios(root):
        try:
            scenario = load(folder)
        except (ValueError, OSError):  # one unreadable folder must not hide the others
            log.warning("scenario %s cannot be read", folder, exc_info=True)
            continue
        alert = scenario.alert
        if scenario.scenario_id in replayed or alert.fingerprint in seen:
            continue
        left.append({"scenario_id": scenario.scenario_id, "severity": alert.severity, "title": alert.title,
                     "service": alert.service, "tone": SEVERITY_TONES.get(alert.severity, "info")})
    left.sort(key=lambda s: (SEVERITY_ORDER.get(s["severity"], 5), s["scenario_id"]))
    return left


def memory_view(data: DataDir, query: str | None = None, *, k: int = 5, store: Any = None) -> dict[str, Any]:
    """The remembered incidents, the reflection insights, and (given a query) the recall ranking; `store`
    is an open memory to use (the live app's), else the directory's is opened read-only for this view."""
    from ..memory import MemoryStore, reflect

    own = store is None
    if own:
        if not data.memory.exists():
            return {"records": [], "insights": [], "results": [], "query": query or ""}
        store = MemoryStore(data.memory, read_only=True)
    try:
        records = store.all()
        results = store.search(query, k=k) if query else []
    finally:
        if own:
            store.close()
    return {"records": [_record(r) for r in sorted(records, key=lambda r: r.occurred_at, reverse=True)],
            "insights": [{"kind": i.kind, "statement": i.statement, "incidents": list(i.incidents)}
                         for i in reflect(records)],
            "results": [{**_record(r.record), "score": r.score, "similarity": r.similarity, "recency": r.recency}
                        for r in results],
            "query": query or ""}


def _record(r: Any) -> dict[str, Any]:
    return {"id": r.id, "title": r.title, "symptoms": r.symptoms, "root_cause": r.root_cause, "category": r.category,
            "remediation": r.remediation, "services": list(r.services), "fix_worked": r.fix_worked,
            "minutes_to_resolve": r.minutes_to_resolve, "occurred_at": r.occurred_at}


def budget_view(data: DataDir, grouped: Mapping[str, list[Mapping[str, Any]]], *,
                daily_budget_usd: float | None = None, now: float | None = None, ledger: Any = None
                ) -> dict[str, Any]:
    """Spend against the day's budget (the ledger's `global:day:<day>` key) and each investigation's own
    budget session, from the ledger when there is one; the day comes from `run.json` when it names one.
    `days` holds every budget day the run spent on (`run.json`'s `budget_days`), each with its spend."""
    run = data.read_run()
    daily = run.get("daily_budget_usd", daily_budget_usd) if run else daily_budget_usd
    moment = datetime.now(UTC) if now is None else datetime.fromtimestamp(now, tz=UTC)
    day = str(run.get("budget_day") or moment.strftime("%Y-%m-%d"))
    listed = run.get("budget_days")
    days = [str(d) for d in listed if d] if isinstance(listed, list) else []
    prefix = f"{run['budget_key_prefix']}:" if run.get("budget_key_prefix") else ""
    key = f"{prefix}global:day:{day}"
    view: dict[str, Any] = {"day": day, "key": key, "daily_budget_usd": daily, "spent_usd": None,
                            "reserved_usd": None, "share": None, "sessions": [], "label": run.get("label", ""),
                            "days": [{"day": d, "key": f"{prefix}global:day:{d}", "spent_usd": None,
                                      "reserved_usd": None, "share": None} for d in days or [day]]}
    own = ledger is None
    if own:
        if not data.budget.exists():
            return view
        from cascadeflow import open_ledger

        ledger = open_ledger(data.ledger_url)
    try:
        states = ledger.states(list(dict.fromkeys([key, *(d["key"] for d in view["days"])])))
        sessions = ledger.states([f"session:{i}" for i in grouped])
    finally:
        if own:
            ledger.close()
    for row in [view, *view["days"]]:
        state = states[row["key"]]
        row["spent_usd"], row["reserved_usd"] = state.spent / 1e6, state.reserved / 1e6
        if daily:
            row["share"] = min((state.spent + state.reserved) / 1e6 / float(daily), 1.0)
    view["sessions"] = [{"investigation_id": k.removeprefix("session:"), "spent_usd": s.spent / 1e6}
                        for k, s in sessions.items() if s.spent or s.reserved]
    return view


def queue_rows(data: DataDir) -> list[dict[str, Any]]:
    """The deferred alerts, oldest first, with why each waits and how often a drain tried it."""
    if not data.queue.exists():
        return []
    from cascadeflow import DeferredQueue

    queue = DeferredQueue(data.queue)
    try:
        items = queue.list()
    finally:
        queue.close()
    rows = []
    for item in items:
        alert = item.payload.get("alert") if isinstance(item.payload.get("alert"), dict) else item.payload
        severity = str(alert.get("severity") or "INFO")
        rows.append({"id": item.id, "incident_id": item.payload.get("incident_id") or alert.get("id") or "",
                     "severity": severity, "tone": SEVERITY_TONES.get(severity, "info"),
                     "title": alert.get("title") or alert.get("name") or "", "reason": item.reason,
                     "attempts": item.attempts, "last_error": item.last_error or "", "when": _clock(item.enqueued_at)})
    return rows


def totals(grouped: Mapping[str, list[Mapping[str, Any]]]) -> dict[str, Any]:
    """The cost panel summed over every investigation (the dashboard's running account)."""
    total: dict[str, Any] = {"total_usd": 0.0, "by_task": {}, "by_model": {}, "calls_by_tier": {},
                             "all_premium_usd": 0.0, "budget_usd": None, "final": True}
    for events in grouped.values():
        panel = cost_panel(events)
        total["total_usd"] += panel["total_usd"]
        total["all_premium_usd"] += panel["all_premium_usd"] or 0.0
        total["final"] = total["final"] and panel["final"]
        for field in ("by_task", "by_model", "calls_by_tier"):
            for k, v in panel[field].items():
                total[field][k] = total[field].get(k, 0) + v
    return total
