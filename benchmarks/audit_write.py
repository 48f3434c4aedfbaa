"""Per-record cost of writing one audit record, p50/p99, for each sink configuration.

Usage: .venv/bin/python benchmarks/audit_write.py [--records 20000] [--dir DIR]

Each sink writes the same realistic record (a two-tier cascade with caller metadata) `--records` times in
one process; every write is timed on its own with perf_counter_ns. fsync-per-record and SQLite FULL are
bounded by the disk and get fewer records. Serialisation alone (the JSON line with redaction) is timed
first, so the rows can be compared within this one run. A last row times 8 processes appending to one
log at once (wall time / records).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from cascadeflow.trace.jsonl import JsonlSink
from cascadeflow.trace.records import AuditRecord
from cascadeflow.trace.redact import record_line
from cascadeflow.trace.sqlite import SqliteSink


def sample_record(i: int) -> AuditRecord:
    tiers = [
        {"tier": 0, "role": "draft", "model": "groq/llama3-8b-8192", "max_tokens": 512, "cost_usd": 0.00009,
         "input_tokens": 847, "output_tokens": 120, "latency_ms": 310.2, "status": "ok", "error": None,
         "finish_reason": "stop", "shrunk_from": None},
        {"tier": 1, "role": "verifier", "model": "groq/llama3-70b-8192", "max_tokens": 1024,
         "cost_usd": 0.0033, "input_tokens": 847, "output_tokens": 312, "latency_ms": 930.7, "status": "ok",
         "error": None, "finish_reason": "stop", "shrunk_from": None},
    ]
    return AuditRecord(
        timestamp="2026-06-15T03:42:11.123Z", request_id=f"{i:032x}", run_id="run-7f3a", user_id="oncall-bot",
        mode="enforce", action="escalate", model_requested="groq/llama3-8b-8192",
        model_selected="groq/llama3-70b-8192", routing_reason="severity=P0", input_tokens=1694,
        output_tokens=432, cost_usd=0.00339, latency_ms=1244.9, budget_remaining=3.42,
        price_version="genai-prices 0.0.30", metadata={"alert_id": f"INC-{i}", "severity": "P0",
                                                      "service": "payments-db"}, tiers=tiers)


def percentiles(samples_ns: list[int]) -> tuple[float, float]:
    ordered = sorted(samples_ns)
    p50 = statistics.median(ordered) / 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1000
    return p50, p99


def time_writes(write, records: list[AuditRecord]) -> tuple[float, float]:
    samples = []
    for record in records:
        started = time.perf_counter_ns()
        write(record)
        samples.append(time.perf_counter_ns() - started)
    return percentiles(samples)


def _append(path: str, count: int, spans) -> None:
    sink = JsonlSink(path, max_bytes=16 * 1024 * 1024, backups=100)
    records = [sample_record(i) for i in range(count)]
    started = time.time()
    for record in records:
        sink.write(record)
    spans.put((started, time.time()))
    sink.close()


def processes_row(directory: Path, workers: int, per_worker: int) -> float:
    """Wall time from the first worker's first write to the last worker's last write, per record."""
    path = str(directory / "multi.jsonl")
    ctx = multiprocessing.get_context("spawn")
    spans = ctx.Queue()
    procs = [ctx.Process(target=_append, args=(path, per_worker, spans)) for _ in range(workers)]
    for proc in procs:
        proc.start()
    windows = [spans.get() for _ in procs]
    for proc in procs:
        proc.join()
    wall = max(end for _, end in windows) - min(start for start, _ in windows)
    return wall / (workers * per_worker) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: a temp dir)")
    args = parser.parse_args()
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        run(args.dir, args.records)
        return
    with tempfile.TemporaryDirectory(prefix="cf-audit-bench-") as directory:
        run(Path(directory), args.records)


def run(directory: Path, records_count: int) -> None:
    n, slow_n = records_count, max(200, records_count // 20)
    records = [sample_record(i) for i in range(n)]
    line_bytes = len(record_line(records[0]).encode()) + 1

    rows: list[tuple[str, int, float, float]] = []
    rows.append(("serialise only (JSON line + redaction)", n, *time_writes(record_line, records)))
    with JsonlSink(directory / "plain.jsonl", max_bytes=None) as sink:
        rows.append(("JsonlSink fsync=never", n, *time_writes(sink.write, records)))
    with JsonlSink(directory / "rotating.jsonl", max_bytes=1024 * 1024, backups=200) as sink:
        rows.append(("JsonlSink fsync=never, rotating every 1 MB", n, *time_writes(sink.write, records)))
    with JsonlSink(directory / "synced.jsonl", max_bytes=None, fsync="always") as sink:
        rows.append(("JsonlSink fsync=always", slow_n, *time_writes(sink.write, records[:slow_n])))
    # the opt-in background writer: the caller's time is the enqueue; the drain at close is timed too, so the
    # throughput is visible next to the per-call figure
    for label, fsync, count in (("fsync=never", "never", n), ("fsync=always", "always", slow_n)):
        sink = JsonlSink(directory / f"background-{fsync}.jsonl", max_bytes=None, fsync=fsync, background=True)
        started = time.perf_counter_ns()
        p50, p99 = time_writes(sink.write, records[:count])
        sink.close()
        drained = (time.perf_counter_ns() - started) / 1000 / count
        rows.append((f"JsonlSink {label}, background=True (caller; {drained:.1f} µs/record until drained)",
                     count, p50, p99))
    with SqliteSink(directory / "normal.db") as sink:
        rows.append(("SqliteSink synchronous=NORMAL (WAL)", n, *time_writes(sink.write, records)))
    with SqliteSink(directory / "full.db", synchronous="FULL") as sink:
        rows.append(("SqliteSink synchronous=FULL (WAL)", slow_n, *time_writes(sink.write, records[:slow_n])))
    per_record = processes_row(directory, 8, n // 8)

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())  # other work on the machine inflates p99
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, load average "
          f"{load}; writing under {directory}; record line {line_bytes} bytes")
    print()
    print("| sink | records | p50 µs | p99 µs |")
    print("| --- | ---: | ---: | ---: |")
    for name, count, p50, p99 in rows:
        print(f"| {name} | {count} | {p50:.1f} | {p99:.1f} |")
    print()
    print(f"8 spawned processes appending {n // 8 * 8} records to one JsonlSink log (fsync=never): "
          f"{per_record:.1f} µs of wall time per record (first write to last write)")


if __name__ == "__main__":
    main()
