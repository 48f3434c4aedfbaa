"""`cascadeflow report` over a million audit records: wall time and peak memory per sink format.

Usage: .venv/bin/python benchmarks/report_scale.py [--records 1000000] [--dir DIR] [--rounds 3]
       [--postgres postgresql://postgres@127.0.0.1:5432/test] [--keep]

Generates `--records` records of a month of traffic (500 users, 8 features, 6 task types, two-tier cascades
with accepts, escalations, stops and cache hits) as the sinks write them: a JSONL log, a SQLite database and a
PostgreSQL table (bulk-loaded with the sinks' schema; the sinks' own per-record writes are timed by
audit_write.py). Then runs `cascadeflow report LOG --by day --by model -f csv` in a fresh process per run,
the three formats in a new order each round, and prints the median wall time (the whole command, start-up
included) and the median peak RSS (the process's maximum resident set, from wait4). The three reports'
totals are checked to agree. The PostgreSQL table has a unique name and is dropped unless --keep.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from cascadeflow.trace.postgres import PostgresSink
from cascadeflow.trace.records import AuditRecord
from cascadeflow.trace.redact import record_line
from cascadeflow.trace.sqlite import SqliteSink

ROOT = Path(__file__).resolve().parents[1]
CHUNK = 10_000  # records generated and inserted at a time
COLUMNS = "timestamp, request_id, run_id, user_id, model, action, cost_usd, record"
LADDERS = (("openai/gpt-4o-mini", 0.15, 0.60, "openai/gpt-4o", 2.50, 10.0),
           ("anthropic/claude-3-5-haiku-latest", 0.80, 4.0, "anthropic/claude-sonnet-4-0", 3.0, 15.0),
           ("groq/llama-3.1-8b-instant", 0.05, 0.08, "groq/llama-3.3-70b-versatile", 0.59, 0.79))
FEATURES = ("chat", "search", "summarise", "triage", "code-review", "translate", "extract", "classify")
TASKS = ("code", "summary", "qa", "classification", "reasoning", "extraction")


def attempt(tier: int, model: str, price_in: float, price_out: float, rng: random.Random) -> dict:
    tokens_in, tokens_out = rng.randint(200, 2000), rng.randint(20, 600)
    return {"tier": tier, "role": "draft" if tier == 0 else "verifier", "model": model, "max_tokens": 1024,
            "cost_usd": (tokens_in * price_in + tokens_out * price_out) / 1e6, "input_tokens": tokens_in,
            "output_tokens": tokens_out, "latency_ms": round(rng.uniform(80, 2500), 3), "status": "ok",
            "error": None, "finish_reason": "stop", "shrunk_from": None}


def make_record(i: int, rng: random.Random) -> AuditRecord:
    drafter, din, dout, verifier, vin, vout = LADDERS[rng.randrange(len(LADDERS))]
    roll = rng.random()
    metadata: dict = {"feature": FEATURES[rng.randrange(len(FEATURES))], "task_type": TASKS[rng.randrange(len(TASKS))]}
    if roll < 0.08:  # a cache hit: no attempt, what the first answer cost saved
        action, tiers = "allow", []
        metadata["cache"] = {"hit": True, "kind": "exact", "saved_usd": round(rng.uniform(1e-4, 5e-3), 6)}
    elif roll < 0.70:
        action, tiers = "accept", [attempt(0, drafter, din, dout, rng)]
    elif roll < 0.99:
        action, tiers = "escalate", [attempt(0, drafter, din, dout, rng), attempt(1, verifier, vin, vout, rng)]
    else:
        action, tiers = "stop", [attempt(0, drafter, din, dout, rng)]
    second = i * 2_592_000 // 1_000_000 % 2_592_000  # spread over 30 days
    day, rest = divmod(second, 86_400)
    return AuditRecord(
        timestamp=f"2026-11-{day + 1:02d}T{rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}.000Z",
        request_id=f"{i:032x}", run_id=None, user_id=f"user-{rng.randrange(500)}", mode="enforce",
        action=action, model_requested=drafter,
        model_selected=None if action == "stop" else (tiers[-1]["model"] if tiers else drafter),
        routing_reason="cascade of 2 tiers", input_tokens=sum(t["input_tokens"] for t in tiers),
        output_tokens=sum(t["output_tokens"] for t in tiers), cost_usd=sum(t["cost_usd"] for t in tiers),
        latency_ms=sum(t["latency_ms"] for t in tiers), budget_remaining=None, price_version="genai-prices",
        metadata=metadata, tiers=tiers,
        error="CascadeExhausted: every tier failed" if action == "stop" else None)


def generate(count: int, folder: Path, postgres: str | None) -> dict[str, str]:
    """The three sources: a JSONL log, a SQLite database and (given a server) a PostgreSQL table, written in
    one pass in chunks (memory stays flat whatever `count`)."""
    jsonl, db = folder / f"audit-{count}.jsonl", folder / f"audit-{count}.db"
    db.unlink(missing_ok=True)
    SqliteSink(db).close()  # the sink's schema and indexes
    sources = {"jsonl": str(jsonl), "sqlite": str(db)}
    pg: Any = None
    if postgres:
        import psycopg

        table = f"report_scale_{uuid.uuid4().hex[:10]}"
        sources["postgresql"] = f"{postgres}?table={table}"
        PostgresSink(sources["postgresql"]).close()  # the sink's schema and indexes
        pg = psycopg.connect(postgres)
    started = time.perf_counter()
    rng = random.Random(20261207)
    with open(jsonl, "w", encoding="utf-8") as log, sqlite3.connect(db) as lite:
        for chunk_start in range(0, count, CHUNK):
            rows = []
            for i in range(chunk_start, min(chunk_start + CHUNK, count)):
                record = make_record(i, rng)
                line = record_line(record)
                log.write(line + "\n")
                rows.append((record.timestamp, record.request_id, record.run_id, record.user_id,
                             record.model_selected or record.model_requested, record.action, record.cost_usd, line))
            lite.executemany(f"INSERT INTO audit ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            if pg is not None:
                with pg.cursor() as cur, cur.copy(f'COPY "{table}" ({COLUMNS}) FROM STDIN') as copy:
                    for row in rows:
                        copy.write_row(row)
                pg.commit()
    if pg is not None:
        pg.close()
    print(f"wrote {count:,} records to {', '.join(sources)} in {time.perf_counter() - started:.0f} s "
          f"({jsonl.stat().st_size / 1e6:.0f} MB of JSONL)", flush=True)
    return sources


def run_report(source: str, out: Path) -> tuple[float, float]:
    """One `cascadeflow report` in a fresh process: (wall seconds, peak RSS in MB)."""
    code = ("import sys; from cascadeflow.cli import main; sys.argv = ['cascadeflow', 'report', sys.argv[1], "
            "'--by', 'day', '--by', 'model', '-f', 'csv', '-o', sys.argv[2]]; main()")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", code, source, str(out)], env=env, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"cascadeflow report failed on {source} (exit {child.returncode})")
    return wall, usage.ru_maxrss / 1024  # Linux reports kilobytes


def total_row(path: Path) -> dict[str, str]:
    with open(path, newline="") as handle:
        return next(row for row in csv.DictReader(handle) if row["day"] == "total")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test",
                        help="server for the PostgreSQL table ('' to leave PostgreSQL out)")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL table")
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="report-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    sources = generate(args.records, folder, args.postgres or None)
    try:
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in sources}
        names = list(sources)
        for round_ in range(args.rounds):
            for name in names[round_ % len(names):] + names[:round_ % len(names)]:
                results[name].append(run_report(sources[name], folder / f"report-{name}.csv"))
        totals = {name: total_row(folder / f"report-{name}.csv") for name in sources}
        first = next(iter(totals.values()))
        for name, row in totals.items():
            assert row["calls"] == first["calls"] and abs(float(row["cost_usd"]) - float(first["cost_usd"])) < 1e-6, \
                (name, row, first)
        print(f"\n{args.records:,} records, {args.rounds} rounds, load average {os.getloadavg()[0]:.1f}; "
              f"report totals agree: {first['calls']} calls, ${float(first['cost_usd']):,.2f}")
        print("| format | wall s (median) | peak RSS MB (median) |\n| --- | ---: | ---: |")
        for name, runs in results.items():
            print(f"| {name} | {statistics.median(w for w, _ in runs):.1f} | "
                  f"{statistics.median(m for _, m in runs):.0f} |")
    finally:
        if "postgresql" in sources and not args.keep:
            import psycopg

            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f'DROP TABLE IF EXISTS "{sources["postgresql"].rsplit("=", 1)[1]}"')


if __name__ == "__main__":
    main()
