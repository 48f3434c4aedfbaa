"""Decision records, the audit log's sinks (JSONL, SQLite, PostgreSQL, OpenTelemetry) and the reader.

Names are resolved on first use: the runtime imports `cascadeflow.trace.records` on every start-up and
must not pay for sinks, readers or the `otel` extra it may never use.
"""

from __future__ import annotations

from typing import Any

from cascadeflow.lazy import lazy_attribute
from cascadeflow.trace.records import AuditRecord, DecisionRecord

_HOME = {
    "AUDIT_PATH_ENV": "audit",
    "default_audit_path": "audit",
    "default_sinks": "audit",
    "open_sinks": "audit",
    "JsonlSink": "jsonl",
    "OtelSink": "otel",
    "PostgresSink": "postgres",
    "SqliteSink": "sqlite",
    "redact_text": "redact",
    "GroupSummary": "reader",
    "LogContents": "reader",
    "RecordFilter": "reader",
    "SkippedLine": "reader",
    "follow": "reader",
    "iter_records": "reader",
    "last_records": "reader",
    "read_log": "reader",
    "summarise": "reader",
    "total": "reader",
}

__all__ = [
    "AUDIT_PATH_ENV",
    "AuditRecord",
    "DecisionRecord",
    "GroupSummary",
    "JsonlSink",
    "LogContents",
    "OtelSink",
    "PostgresSink",
    "RecordFilter",
    "SkippedLine",
    "SqliteSink",
    "default_audit_path",
    "default_sinks",
    "follow",
    "iter_records",
    "last_records",
    "open_sinks",
    "read_log",
    "redact_text",
    "summarise",
    "total",
]


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, _HOME, name)


def __dir__() -> list[str]:
    return __all__
