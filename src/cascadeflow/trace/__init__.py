"""Decision records, the audit log's sinks (JSONL, SQLite, OpenTelemetry) and the reader.

The OpenTelemetry sink is imported lazily (extra `otel`), so importing this package needs no extra.
"""

from cascadeflow.trace.audit import AUDIT_PATH_ENV, default_audit_path, open_sinks
from cascadeflow.trace.jsonl import JsonlSink
from cascadeflow.trace.reader import (
    GroupSummary,
    LogContents,
    RecordFilter,
    SkippedLine,
    follow,
    iter_records,
    last_records,
    read_log,
    summarise,
    total,
)
from cascadeflow.trace.records import AuditRecord, DecisionRecord
from cascadeflow.trace.redact import redact_text
from cascadeflow.trace.sqlite import SqliteSink

__all__ = [
    "AUDIT_PATH_ENV",
    "AuditRecord",
    "DecisionRecord",
    "GroupSummary",
    "JsonlSink",
    "LogContents",
    "OtelSink",
    "RecordFilter",
    "SkippedLine",
    "SqliteSink",
    "default_audit_path",
    "follow",
    "iter_records",
    "last_records",
    "open_sinks",
    "read_log",
    "redact_text",
    "summarise",
    "total",
]


def __getattr__(name: str):
    if name == "OtelSink":
        from cascadeflow.trace.otel import OtelSink

        return OtelSink
    raise AttributeError(f"module 'cascadeflow.trace' has no attribute {name!r}")
