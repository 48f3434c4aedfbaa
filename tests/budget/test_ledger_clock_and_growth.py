"""Ledgers under a skewed clock and over a long life: leases judged by the store's clock, expired leases charged
their worst case, bounded memory (memory ledger) and TTLs on every key (Redis)."""

from __future__ import annotations

import os
import sqlite3
import time
import uuid

import pytest
from budget_support import POSTGRES_URL, REDIS_URL, FakeClock, require_postgres, require_redis

from cascadeflow.budget import open_ledger
from cascadeflow.budget.backends.memory import MemoryLedger
from cascadeflow.budget.backends.sqlite import SqliteLedger
from cascadeflow.budget.windows import window_key
from cascadeflow.errors import BudgetExceeded
from cascadeflow.runtime.pipeline import Charge

SKEW_SECONDS = 301  # ahead of a 300 s lease


def _shared_url(backend: str) -> str:
    if backend == "redis":
        require_redis()
        return f"{REDIS_URL}?prefix=cf-skew-{uuid.uuid4().hex[:8]}"
    require_postgres()
    return f"{POSTGRES_URL}?schema=cf_skew_{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("backend", ["redis", "postgres"])
def test_a_worker_whose_clock_runs_ahead_cannot_expire_the_others_reservations(backend, monkeypatch):
    url = _shared_url(backend)
    key = Charge("global:day:2026-12-07", 1_000_000)
    honest = open_ledger(url)
    try:
        honest.reserve("honest:1", [key], 900_000, 300)
        real_time = time.time
        monkeypatch.setattr(time, "time", lambda: real_time() + SKEW_SECONDS)  # this process's clock is wrong
        skewed = open_ledger(url)
        with pytest.raises(BudgetExceeded):  # the honest worker's reservation still holds the money
            skewed.reserve("skewed:1", [key], 200_000, 300)
        state = skewed.state(key.key)
        assert (state.spent, state.reserved) == (0, 900_000)
        skewed.close()
    finally:
        honest.drop_all()  # type: ignore[attr-defined]
        honest.close()


def test_redis_budget_keys_reservations_and_leases_all_carry_a_ttl():
    require_redis()
    prefix = f"cf-ttl-{uuid.uuid4().hex[:8]}"
    ledger = open_ledger(f"{REDIS_URL}?prefix={prefix}", retention_seconds=3600)
    try:
        day = Charge(window_key("user:erin", "day", time.time()), 1_000_000)
        run = Charge(f"run:{uuid.uuid4().hex}", 1_000_000)
        ledger.reserve("r1", [day, run], 1_000, 60)
        ledger.reserve("r2", [run], 1_000, 60)
        ledger.settle("r1", 500)
        keys = list(ledger.client.scan_iter(match="{" + prefix + "}:*"))  # type: ignore[attr-defined]
        assert len(keys) == 5  # two budget keys, two reservations, the lease index
        ttls = {k.decode(): ledger.client.ttl(k) for k in keys}  # type: ignore[attr-defined]
        assert all(ttl > 0 for ttl in ttls.values()), ttls
        # a day key lives past its window (plus grace), a run key `retention` past its last lease
        assert ttls["{" + prefix + "}:k:" + day.key] > 86_400
        assert 3600 < ttls["{" + prefix + "}:k:" + run.key] <= 3600 + 60 + 1
    finally:
        ledger.drop_all()  # type: ignore[attr-defined]
        ledger.close()


@pytest.mark.slow
def test_memory_ledger_size_holds_over_a_million_calls():
    clock = FakeClock()
    ledger = open_ledger("memory://", clock=clock)  # the defaults: reserve purges hourly
    sizes, purged = [], []
    day_keys: dict[tuple[int, int], Charge] = {}
    for i in range(1_000_000):
        day, user = int(clock() // 86_400), i % 50
        if (day, user) not in day_keys:
            day_keys[(day, user)] = Charge(window_key(f"user:u{user}", "day", clock()), 10**12)
        # a run of 20 calls, 50 users, day windows rolling over
        charges = [day_keys[(day, user)], Charge(f"run:{i // 20}", 10**9)]
        ledger.reserve(f"c{i}", charges, 2_000, 300)
        ledger.settle(f"c{i}", 1_000)
        clock.advance(0.5)  # a million calls over ~5.8 days
        if i % 100_000 == 99_999:
            sizes.append(len(ledger))  # as reserve's hourly purge left it, at a varying phase of the hour
            ledger.purge()
            purged.append(len(ledger))
    # held: the reservations of at most two purge periods (purged hourly, kept an hour) at 2 calls per second,
    # the leases still running, and the keys of recent runs and days still in their grace; right after a purge,
    # the same amount at every sample: it never grows with the number of calls
    calls_per_second, hour = 2, 3600
    assert max(sizes) <= 2 * hour * calls_per_second * 1.2, sizes
    assert max(purged) <= 1.05 * min(purged), purged


def test_purge_forgets_finished_reservations_and_keys_past_their_window():
    clock = FakeClock()
    ledger = MemoryLedger(clock=clock, retention_seconds=60)
    day = Charge(window_key("user:fay", "day", clock()), 1_000_000)
    ledger.reserve("a", [day, Charge("session:s1", 1_000_000)], 100, 30)
    ledger.settle("a", 50)
    assert ledger.purge() == 0 and len(ledger) > 0  # still within retention and window
    clock.advance(3 * 86_400 + 120)  # past the window, its grace and the retention
    assert ledger.purge() == 1
    assert len(ledger) == 0
    assert ledger.settle("a", 50).status == "unknown"


def _key_rows(ledger) -> int:  # type: ignore[no-untyped-def]
    """How many budget keys a SQL store keeps (read through its own connection)."""
    if isinstance(ledger, SqliteLedger):
        with sqlite3.connect(ledger.path) as conn:
            return int(conn.execute("SELECT count(*) FROM budget_keys").fetchone()[0])
    import psycopg

    with psycopg.connect(ledger.conninfo) as conn:  # type: ignore[attr-defined]
        table = f"{ledger.schema}.cascadeflow_budget_keys"  # type: ignore[attr-defined]
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]


@pytest.mark.backends("sqlite", "postgres")
def test_sql_key_tables_stay_bounded_over_many_windows(make_ledger, clock):  # type: ignore[no-untyped-def]
    ledger = make_ledger(clock=clock, retention_seconds=3600)
    rows, pages = [], []
    for day in range(30):  # a month of day windows; each day 10 users and 20 runs come and go
        for call in range(40):
            charges = [Charge(window_key(f"user:u{call % 10}", "day", clock()), 10**9),
                       Charge(f"run:{day}-{call % 20}", 10**9)]
            ledger.reserve(f"d{day}c{call}", charges, 2_000, 60)
            ledger.settle(f"d{day}c{call}", 1_000)
            clock.advance(86_400 / 40)
        ledger.purge()
        rows.append(_key_rows(ledger))
        if isinstance(ledger, SqliteLedger):
            pages.append(os.path.getsize(ledger.path))
    # kept: the day keys still inside their window plus grace (3 days of 10 users), nothing older; the runs of
    # the last hour of retention at most. Without expiry the table would hold 30 * 30 keys by now.
    assert max(rows[5:]) <= 3 * 10 + 20 and rows[-1] == rows[10], rows
    assert not pages or pages[-1] <= pages[10], pages  # freed pages are reused: the file stops growing
    state = ledger.state(window_key("user:u3", "day", clock() - 1))  # today's keys are still charged
    assert state.spent > 0
