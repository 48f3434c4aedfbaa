"""The audit trail as the app shows and exports it: the library's audit log (read with its own reader and
`RecordFilter`) narrowed to one incident's investigation, a model, an action or a time window, written out
as JSON lines or CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cascadeflow.trace import RecordFilter, iter_records

from .datadir import DataDir

CSV_COLUMNS = ("timestamp", "request_id", "investigation", "task_type", "action", "model_selected", "input_tokens",
               "output_tokens", "cost_usd", "latency_ms", "budget_remaining", "routing_reason", "error")


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """What to keep: `incident` is an incident id or an investigation id; `model` takes wildcards
    (`local/*`); `since` / `until` are ISO-8601 times (UTC when no zone is given)."""

    incident: str | None = None
    model: str | None = None
    action: str | None = None
    since: str | None = None
    until: str | None = None

    def record_filter(self) -> RecordFilter:
        return RecordFilter(model=self.model or None, action=self.action or None,
                            since=parse_time(self.since) if self.since else None,
                            until=parse_time(self.until) if self.until else None)

    def as_params(self) -> dict[str, str]:
        return {k: v for k, v in (("incident", self.incident), ("model", self.model), ("action", self.action),
                                  ("since", self.since), ("until", self.until)) if v}


def parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"cannot read time {text!r}: use ISO-8601, e.g. 2026-12-07T03:42:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def investigation_of(data: DataDir, incident: str) -> str:
    """The investigation an incident id points at (an investigation id is its own answer)."""
    line = data.read_incidents().get(incident)
    return str(line.get("investigation_id") or incident) if line else incident


def audit_records(data: DataDir, query: AuditQuery | None = None) -> list[dict[str, Any]]:
    """The matching audit records, oldest first; an absent log is an empty trail."""
    query = query or AuditQuery()
    if not data.audit.exists():
        return []
    where = query.record_filter()
    records: Iterable[dict[str, Any]] = iter_records(data.audit, where=where)
    if query.incident:
        investigation = investigation_of(data, query.incident)
        records = (r for r in records if _investigation(r) == investigation)
    return list(records)


def _investigation(record: Mapping[str, Any]) -> Any:
    metadata = record.get("metadata") or {}
    return metadata.get("investigation", record.get("investigation"))


def audit_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """The flat columns of one record (the page's table and the CSV)."""
    metadata = record.get("metadata") or {}
    return {"timestamp": record.get("timestamp"), "request_id": record.get("request_id"),
            "investigation": _investigation(record), "task_type": metadata.get("task_type", record.get("task_type")),
            "action": record.get("action"), "model_selected": record.get("model_selected"),
            "input_tokens": record.get("input_tokens"), "output_tokens": record.get("output_tokens"),
            "cost_usd": record.get("cost_usd"), "latency_ms": record.get("latency_ms"),
            "budget_remaining": record.get("budget_remaining"), "routing_reason": record.get("routing_reason"),
            "error": record.get("error")}


def audit_total(records: Iterable[Mapping[str, Any]]) -> float:
    return sum(float(r.get("cost_usd") or 0.0) for r in records)


def export_jsonl(records: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """The records exactly as the audit log holds them, one JSON object per line."""
    for record in records:
        yield json.dumps(record, separators=(",", ":"), default=str) + "\n"


def export_csv(records: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for record in records:
        writer.writerow(audit_row(record))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()
