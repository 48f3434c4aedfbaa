"""Across OS processes: 8 processes × 200 calls on one budget never overshoot, and a worker SIGKILLed
between reserve and settle gives its money back when its lease passes. Real processes, real stores."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from budget_support import FakeClock, LedgerFactory
from ledger_worker import run_calls

from cascadeflow.errors import BudgetExceeded
from cascadeflow.runtime.pipeline import Charge

pytestmark = pytest.mark.slow

PROCESSES = 8
CALLS = 200
LIMIT = 10_000_000  # $10 against ~1,600 calls averaging $0.03 worst case: heavily contended


@pytest.mark.backends("sqlite", "redis", "postgres")
def test_eight_processes_sharing_one_budget_never_overshoot(ledger_url: str, make_ledger: LedgerFactory) -> None:
    key = "global:day:2026-11-24"
    # Atomicity does not depend on when PostgreSQL flushes its WAL; skipping the per-commit fsync keeps
    # this test at a few seconds on slow disks (the lock on the one hot budget row is held until commit).
    url = ledger_url + "&synchronous_commit=off" if ledger_url.startswith("postgresql") else ledger_url
    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:
        results = pool.starmap(run_calls, [(url, key, LIMIT, CALLS, worker) for worker in range(PROCESSES)])
    final = make_ledger().state(key)
    admitted = sum(r["admitted"] for r in results)
    refused = sum(r["refused"] for r in results)
    assert admitted + refused == PROCESSES * CALLS
    assert admitted and refused  # the budget really ran out mid-run
    assert final.reserved == 0
    assert final.spent == sum(r["settled"] for r in results)  # nothing lost, nothing counted twice
    assert final.spent <= LIMIT


def _hold_in_subprocess(url: str, key: str, amount: int, lease: float) -> subprocess.Popen[str]:
    worker = Path(__file__).with_name("ledger_worker.py")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.Popen([sys.executable, str(worker), "hold", url, key, str(LIMIT), str(amount), str(lease),
                             "doomed-call:0"], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "reserved", f"worker did not reserve (exit code {proc.poll()})"
    return proc


@pytest.mark.backends("sqlite", "redis", "postgres")
def test_sigkilled_worker_reservation_is_charged_its_worst_case_after_its_lease(
        ledger_url: str, make_ledger: LedgerFactory) -> None:
    key = "user:dave:day:2026-11-24"
    proc = _hold_in_subprocess(ledger_url, key, LIMIT, lease=30)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    proc.stdout.close()  # type: ignore[union-attr]

    clock = FakeClock(time.time())  # the worker leased with the real clock; we move ours forward
    ledger = make_ledger(clock=clock)
    assert ledger.state(key).reserved == LIMIT  # the dead worker's money is still held ...
    with pytest.raises(BudgetExceeded):
        ledger.reserve("blocked:0", [Charge(key, LIMIT)], 1, 30)
    clock.advance(31)  # ... and once its lease passes it is spent: the worker may have sent the call
    assert ledger.sweep() >= 1
    assert ledger.counters["expired_charged"] >= 1
    state = ledger.state(key)
    assert (state.spent, state.reserved) == (LIMIT, 0)
    with pytest.raises(BudgetExceeded):
        ledger.reserve("next:0", [Charge(key, LIMIT)], 1, 30)


def test_opening_a_sqlite_ledger_waits_out_a_concurrent_switch_to_wal_instead_of_failing(monkeypatch):
    # Seen in this suite: one of 8 processes opening a new ledger together got "database is locked" from
    # PRAGMA journal_mode=WAL, which SQLite reports at once instead of calling its busy handler.
    import sqlite3

    from cascadeflow.budget.backends import sqlite as backend

    class Conn:
        def __init__(self, failures: int, message: str = "database is locked"):
            self.failures, self.message, self.calls = failures, message, 0

        def execute(self, sql: str) -> None:
            self.calls += 1
            if self.calls <= self.failures:
                raise sqlite3.OperationalError(self.message)

    monkeypatch.setattr(backend.time, "sleep", lambda s: None)
    conn = Conn(failures=3)
    backend._set_wal(conn)  # type: ignore[arg-type]
    assert conn.calls == 4
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):  # other errors are not waited out
        backend._set_wal(Conn(failures=1, message="disk I/O error"))  # type: ignore[arg-type]
    monkeypatch.setattr(backend, "BUSY_TIMEOUT_MS", 0)
    with pytest.raises(sqlite3.OperationalError, match="locked"):  # nor a lock held past the busy timeout
        backend._set_wal(Conn(failures=10**6))  # type: ignore[arg-type]
