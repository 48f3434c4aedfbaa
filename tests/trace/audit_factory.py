"""Builders shared by the trace tests and the worker processes they spawn (importable by name under spawn)."""

from __future__ import annotations

import os
import sys
from typing import Any

from cascadeflow.trace.jsonl import JsonlSink
from cascadeflow.trace.records import AuditRecord


def make_record(request_id: str = "req-1", **overrides: Any) -> AuditRecord:
    values: dict[str, Any] = {
        "timestamp": "2026-06-15T03:42:11.000Z", "request_id": request_id, "run_id": "run-1",
        "user_id": "alice", "mode": "observe", "action": "allow",
        "model_requested": "groq/llama3-70b-8192", "model_selected": "groq/llama3-70b-8192",
        "routing_reason": "severity=P0", "input_tokens": 847, "output_tokens": 312, "cost_usd": 0.0034,
        "latency_ms": 1240.0, "budget_remaining": 3.42, "price_version": "genai-prices 0.0.30",
        "metadata": {"alert_id": "INC-042", "severity": "P0"},
        "tiers": [{"tier": 0, "role": "single", "model": "groq/llama3-70b-8192", "max_tokens": 1024,
                   "cost_usd": 0.0034, "input_tokens": 847, "output_tokens": 312, "latency_ms": 1200.0,
                   "status": "ok", "error": None, "finish_reason": "stop", "shrunk_from": None}],
    }
    values.update(overrides)
    return AuditRecord(**values)


def write_many(path: str, worker: int, count: int, max_bytes: int, backups: int) -> int:
    """One worker process of the concurrency tests: `count` records with ids `w<worker>-<i>`."""
    sink = JsonlSink(path, max_bytes=max_bytes, backups=backups)
    write_with(sink, worker, count)
    sink.close()
    return count


def write_with(sink: Any, worker: int, count: int) -> None:
    for i in range(count):
        sink.write(make_record(f"w{worker}-{i}", metadata={"worker": worker, "pid": os.getpid()}))


def write_until_killed(path: str, prefix: str, padding: int) -> None:
    """Write large records forever, printing each id once `write` has returned (i.e. was accepted)."""
    sink = JsonlSink(path, max_bytes=None)
    blob = "x" * padding
    i = 0
    while True:
        sink.write(make_record(f"{prefix}-{i}", metadata={"blob": blob}))
        sys.stdout.write(f"{prefix}-{i}\n")
        sys.stdout.flush()
        i += 1


if __name__ == "__main__":
    write_until_killed(sys.argv[1], sys.argv[2], int(sys.argv[3]))


def write_sqlite(path: str, worker: int, count: int) -> int:
    """One worker process of the SQLite concurrency test."""
    from cascadeflow.trace.sqlite import SqliteSink

    with SqliteSink(path) as sink:
        for i in range(count):
            sink.write(make_record(f"w{worker}-{i}", user_id=f"user{worker % 2}", metadata={"worker": worker}))
    return count


def write_with_inherited(sink: Any, worker: int, count: int) -> int:
    """Fork worker: writes through a sink object created (and used) by the parent before the fork."""
    write_with(sink, worker, count)
    return count
