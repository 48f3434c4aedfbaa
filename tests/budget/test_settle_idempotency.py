"""A duplicated settle changes nothing; a settle for an unknown reservation is rejected and logged."""

from __future__ import annotations

import logging

import pytest
from budget_support import LedgerFactory

from cascadeflow.runtime.pipeline import Charge

DAY = Charge("user:bob:day:2026-11-24", 1_000_000)


def test_duplicate_settle_changes_nothing(make_ledger: LedgerFactory) -> None:
    ledger = make_ledger()
    ledger.reserve("req-1:0", [DAY], 300_000, 60)
    ledger.reserve("req-2:0", [DAY], 200_000, 60)
    first = ledger.settle("req-1:0", 100_000)
    before = ledger.state(DAY.key)
    duplicate = ledger.settle("req-1:0", 100_000)
    different_figure = ledger.settle("req-1:0", 999_999)
    assert first.status == "settled"
    assert duplicate.status == "duplicate" and not duplicate.accepted
    assert different_figure.status == "duplicate"
    assert ledger.state(DAY.key) == before
    assert (before.spent, before.reserved) == (100_000, 200_000)


def test_duplicate_release_after_settle_changes_nothing(make_ledger: LedgerFactory) -> None:
    ledger = make_ledger()
    ledger.reserve("r", [DAY], 300_000, 60)
    ledger.settle("r", 250_000)
    assert ledger.release("r").status == "duplicate"
    assert ledger.state(DAY.key).spent == 250_000


def test_settle_for_an_unknown_reservation_is_rejected_and_logged(
        make_ledger: LedgerFactory, caplog: pytest.LogCaptureFixture) -> None:
    ledger = make_ledger()
    ledger.reserve("known", [DAY], 300_000, 60)
    with caplog.at_level(logging.WARNING, logger="cascadeflow.budget.ledger"):
        result = ledger.settle("never-reserved", 50_000)
    assert result.status == "unknown" and not result.accepted
    assert ledger.counters["unknown_settle"] == 1
    assert [r for r in caplog.records if "never-reserved" in r.getMessage() and r.levelno == logging.WARNING]
    state = ledger.state(DAY.key)
    assert (state.spent, state.reserved) == (0, 300_000)


def test_concurrent_duplicate_settles_count_once(make_ledger: LedgerFactory) -> None:
    from concurrent.futures import ThreadPoolExecutor

    ledger = make_ledger()
    ledger.reserve("dup", [DAY], 300_000, 60)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: ledger.settle("dup", 120_000).status, range(16)))
    assert results.count("settled") == 1 and results.count("duplicate") == 15
    assert ledger.state(DAY.key).spent == 120_000
