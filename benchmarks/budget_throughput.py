"""Admitted calls per second with 8 processes reserving and settling against one shared budget key.

Usage: .venv/bin/python benchmarks/budget_throughput.py [--processes 8] [--seconds 3]

Every process (spawned, not forked) opens its own ledger on the same store, waits at a barrier, then runs
reserve + settle pairs on the same three keys (user day, user month, global day) for a fixed time. The
budget is large, so every call is admitted: this measures how many admissions per second one shared budget
sustains, i.e. the cost of the cross-process atomicity. SQLite is a file on local disk; Redis and PostgreSQL
are the local servers (PostgreSQL both with the default per-commit WAL flush and with synchronous_commit=off).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import sys
import tempfile
import time
import uuid

from budget_admission import CHARGES, POSTGRES_URL, REDIS_URL, drop

from cascadeflow.budget.ledger import open_ledger
from cascadeflow.errors import BudgetBackendUnavailable


def worker(url: str, seconds: float, barrier: multiprocessing.synchronize.Barrier, index: int) -> tuple[int, float]:
    ledger = open_ledger(url)
    ledger.state(CHARGES[0].key)  # connect and create tables before the clock starts
    barrier.wait()
    start = time.perf_counter()
    done = 0
    while time.perf_counter() - start < seconds:
        rid = f"w{index}-{done}"
        ledger.reserve(rid, CHARGES, 30_000, 60)
        ledger.settle(rid, 12_345)
        done += 1
    elapsed = time.perf_counter() - start
    ledger.close()
    return done, elapsed


def run(url: str, processes: int, seconds: float) -> tuple[int, float, int]:
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(processes)
        with context.Pool(processes) as pool:
            results = pool.starmap(worker, [(url, seconds, barrier, i) for i in range(processes)])
    admitted = sum(r[0] for r in results)
    wall = max(r[1] for r in results)
    ledger = open_ledger(url)
    spent = ledger.state(CHARGES[0].key).spent
    drop(url, ledger)
    ledger.close()
    return admitted, wall, spent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {args.processes} processes x "
          f"{args.seconds:g} s, load average {os.getloadavg()[0]:.2f}")
    print(f"{'backend':<26}{'admitted':>10}{'calls/s':>10}  check")
    with tempfile.TemporaryDirectory() as folder:
        tag = uuid.uuid4().hex[:10]
        backends = {
            "sqlite": f"sqlite:///{folder}/throughput-{tag}.db",
            "redis": f"{REDIS_URL}?prefix={{cfbench-{tag}}}",
            "postgres": f"{POSTGRES_URL}?schema=cfbench_{tag}",
            "postgres (sync_commit off)": f"{POSTGRES_URL}?schema=cfbench_{tag}_async&synchronous_commit=off",
        }
        for name, url in backends.items():
            try:
                admitted, wall, spent = run(url, args.processes, args.seconds)
            except BudgetBackendUnavailable as exc:
                print(f"{name:<26} skipped: {exc}")
                continue
            check = "ok" if spent == admitted * 12_345 else f"MISMATCH spent={spent}"
            print(f"{name:<26}{admitted:>10}{admitted / wall:>10.0f}  spent == admitted x actual: {check}")
    print(f"load average (1 min) after the run: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
