"""Admission latency of each ledger backend: one reserve + settle pair, p50/p99, on loopback.

Usage: .venv/bin/python benchmarks/budget_admission.py [--calls 3000]

Each call reserves a worst case on three keys (user day, user month, global day, as a real call with a
per-user budget does) and settles it to a lower actual cost. PostgreSQL runs twice: with the default
per-commit WAL flush (the figure is then mostly the disk's fsync time) and with synchronous_commit=off. The budget is large enough that every call is
admitted. Redis and PostgreSQL are the local servers (127.0.0.1); a backend whose server is unreachable is
reported as skipped. Each backend runs on a fresh Redis prefix / PostgreSQL schema, dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid

from cascadeflow.budget.ledger import BaseLedger, open_ledger
from cascadeflow.errors import BudgetBackendUnavailable
from cascadeflow.runtime.pipeline import Charge

REDIS_URL = os.environ.get("CASCADEFLOW_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get("CASCADEFLOW_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
TARGETS_US = {"memory": 20, "sqlite": 1000, "redis": 1000, "postgres": 2000, "postgres (sync_commit off)": 2000}
CHARGES = [Charge("user:alice:day:2026-11-24", 10**12), Charge("user:alice:month:2026-11", 10**12),
           Charge("global:day:2026-11-24", 10**12)]


def backend_urls(folder: str) -> dict[str, str]:
    tag = uuid.uuid4().hex[:10]
    return {"memory": "memory://", "sqlite": f"sqlite:///{folder}/bench-{tag}.db",
            "redis": f"{REDIS_URL}?prefix={{cfbench-{tag}}}", "postgres": f"{POSTGRES_URL}?schema=cfbench_{tag}",
            "postgres (sync_commit off)": f"{POSTGRES_URL}?schema=cfbench_{tag}_a&synchronous_commit=off"}


def measure(ledger: BaseLedger, calls: int, warmup: int) -> list[float]:
    """Microseconds per reserve+settle pair."""
    samples = []
    for i in range(warmup + calls):
        rid = f"bench-{i}"
        start = time.perf_counter_ns()
        ledger.reserve(rid, CHARGES, 30_000, 60)
        ledger.settle(rid, 12_345)
        elapsed = (time.perf_counter_ns() - start) / 1000
        if i >= warmup:
            samples.append(elapsed)
    return samples


def percentile(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[int(q) - 1]


def drop(url: str, ledger: BaseLedger) -> None:
    if url.startswith("redis"):
        ledger.drop_all()  # type: ignore[attr-defined]
    elif url.startswith("postgresql"):
        schema = ledger.schema  # type: ignore[attr-defined]
        ledger._tx(lambda conn: conn.execute(f'DROP SCHEMA "{schema}" CASCADE'))  # type: ignore[attr-defined]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'backend':<28}{'calls':>7}{'p50 us':>10}{'p99 us':>10}{'mean us':>10}  target p50")
    with tempfile.TemporaryDirectory() as folder:
        for name, url in backend_urls(folder).items():
            calls = args.calls * (10 if name == "memory" else 1)
            try:
                ledger = open_ledger(url)
                samples = measure(ledger, calls, warmup=max(calls // 10, 50))
            except BudgetBackendUnavailable as exc:
                print(f"{name:<28} skipped: {exc}")
                continue
            p50, p99 = percentile(samples, 50), percentile(samples, 99)
            verdict = "met" if p50 <= TARGETS_US[name] else "MISSED"
            print(f"{name:<28}{calls:>7}{p50:>10.1f}{p99:>10.1f}{statistics.fmean(samples):>10.1f}  "
                  f"<= {TARGETS_US[name]} us: {verdict}")
            drop(url, ledger)
            ledger.close()
    print(f"load average (1 min) after the run: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
