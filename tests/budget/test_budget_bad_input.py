"""Bad input gets a clear error before any money moves; an unreachable store fails closed, or open when
configured (logged and counted), and is re-probed rather than judged once."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path

import pytest
from budget_support import FakeClock, LedgerFactory

from cascadeflow.budget import BudgetConfig, UserBudget, open_ledger
from cascadeflow.budget.backends.sqlite import SqliteLedger
from cascadeflow.budget.ledger import BACKOFF_START
from cascadeflow.errors import BudgetBackendUnavailable, ConfigurationError
from cascadeflow.runtime.pipeline import Charge

KEY = "user:carol:day:2026-11-24"


@pytest.mark.parametrize("limit", [-5, -1_000_000, 1.5, "100", None, True, 10**18 + 1, 2**63])
def test_reserve_rejects_a_limit_that_is_not_an_integer_a_store_can_hold(make_ledger: LedgerFactory,
                                                                          limit: object) -> None:
    ledger = make_ledger()
    with pytest.raises(ConfigurationError, match="limit_micro must be an integer of micro-USD from 0"):
        ledger.reserve("r", [Charge(KEY, limit)], 10, 60)  # type: ignore[arg-type]
    assert ledger.state(KEY).reserved == 0
    assert ledger.settle("r", 0).status == "unknown"


@pytest.mark.parametrize(("args", "message"), [
    (("", [Charge(KEY, 100)], 10, 60), "reservation_id"),
    (("r", [], 10, 60), "non-empty list"),
    (("r", ["user:x"], 10, 60), "Charge objects"),
    (("r", [Charge("", 100)], 10, 60), "budget key"),
    (("r", [Charge(KEY, 100)], -1, 60), "amount_micro"),
    (("r", [Charge(KEY, 100)], 0.5, 60), "amount_micro"),
    (("r", [Charge(KEY, 100)], 10, 0), "lease_seconds"),
    (("r", [Charge(KEY, 100)], 10, float("inf")), "lease_seconds"),
])
@pytest.mark.backends("memory", "sqlite")
def test_reserve_rejects_malformed_arguments(make_ledger: LedgerFactory, args: tuple, message: str) -> None:
    ledger = make_ledger()
    with pytest.raises(ConfigurationError, match=message):
        ledger.reserve(*args)
    assert ledger.state(KEY).reserved == 0


@pytest.mark.backends("memory")
def test_settle_rejects_a_negative_or_fractional_cost(make_ledger: LedgerFactory) -> None:
    ledger = make_ledger()
    ledger.reserve("r", [Charge(KEY, 100)], 10, 60)
    for bad in (-1, 1.5, "3"):
        with pytest.raises(ConfigurationError, match="actual_micro"):
            ledger.settle("r", bad)  # type: ignore[arg-type]
    assert ledger.state(KEY).reserved == 10


@pytest.mark.parametrize("value", [0, -1, -0.01, "lots", float("nan"), float("inf"), True, [5]])
def test_budget_config_rejects_non_positive_or_non_numeric_limits(value: object) -> None:
    with pytest.raises(ConfigurationError, match="daily_limit"):
        BudgetConfig(daily_limit=value)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="UserBudget.monthly"):
        UserBudget(daily=5.0, monthly=value)  # type: ignore[arg-type]


def test_budget_config_accepts_numeric_strings_and_decimals() -> None:
    assert BudgetConfig(daily_limit="2.50").daily_limit == "2.50"
    assert UserBudget(daily=Decimal("0.10")).limits_micro() == [("day", 100_000)]


@pytest.mark.parametrize("url", ["mysql://localhost/db", "memcached://x", "ledger.db", "", "sqlite://"])
def test_unknown_or_malformed_ledger_url_lists_the_schemes(url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        open_ledger(url)
    text = str(info.value)
    assert "sqlite" in text and ("redis://" in text or "file path" in text)


def test_unreachable_redis_fails_closed_with_nothing_charged() -> None:
    ledger = open_ledger("redis://127.0.0.1:1/0")
    with pytest.raises(BudgetBackendUnavailable, match="127.0.0.1"):
        ledger.reserve("r", [Charge(KEY, 1_000_000)], 10, 60)
    assert ledger.counters["fail_open_reserve"] == 0


def test_unreachable_postgres_fails_closed() -> None:
    ledger = open_ledger("postgresql://postgres@127.0.0.1:1/test")
    with pytest.raises(BudgetBackendUnavailable, match="unreachable"):
        ledger.reserve("r", [Charge(KEY, 1_000_000)], 10, 60)


def test_fail_open_admits_logs_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    ledger = open_ledger("redis://127.0.0.1:1/0", fail_open=True, clock=clock)
    with caplog.at_level(logging.WARNING, logger="cascadeflow.budget.ledger"):
        first = ledger.reserve("r1", [Charge(KEY, 1_000_000)], 10, 60)
        clock.advance(10)
        second = ledger.reserve("r2", [Charge(KEY, 1_000_000)], 10, 60)
        settled = ledger.settle("r1", 5)
    assert first.status == second.status == "admitted_unrecorded"
    assert settled.status == "unrecorded"
    assert ledger.counters["fail_open_reserve"] == 2 and ledger.counters["fail_open_settle"] == 1
    assert sum("fail_open=True" in r.getMessage() for r in caplog.records) == 3


def test_fail_open_still_refuses_what_does_not_fit(tmp_path: Path) -> None:
    ledger = open_ledger(f"sqlite:///{tmp_path / 'l.db'}", fail_open=True)
    ledger.reserve("a", [Charge(KEY, 100)], 100, 60)
    with pytest.raises(Exception, match="does not fit"):
        ledger.reserve("b", [Charge(KEY, 100)], 1, 60)


def test_store_is_re_probed_after_a_short_back_off(tmp_path: Path) -> None:
    clock = FakeClock()
    folder = tmp_path / "not-yet"
    ledger = SqliteLedger(folder / "ledger.db", clock=clock)
    with pytest.raises(BudgetBackendUnavailable, match="does not exist"):
        ledger.reserve("r1", [Charge(KEY, 100)], 10, 60)
    folder.mkdir()
    with pytest.raises(BudgetBackendUnavailable, match="retrying shortly"):  # inside the back-off: no probe
        ledger.reserve("r1", [Charge(KEY, 100)], 10, 60)
    clock.advance(BACKOFF_START)
    assert ledger.reserve("r1", [Charge(KEY, 100)], 10, 60).status == "held"  # probed again: store is back
    assert ledger.state(KEY).reserved == 10


def test_postgres_synchronous_commit_option_is_validated() -> None:
    with pytest.raises(ConfigurationError, match="synchronous_commit"):
        open_ledger("postgresql://postgres@127.0.0.1:1/test?synchronous_commit=maybe")


def test_store_passwords_stay_out_of_error_messages() -> None:
    ledger = open_ledger("redis://:hunter2@127.0.0.1:1/0")
    with pytest.raises(BudgetBackendUnavailable) as info:
        ledger.reserve("r", [Charge(KEY, 100)], 1, 60)
    assert "hunter2" not in str(info.value) and "hunter2" not in ledger.url
    pg = open_ledger("postgresql://postgres:hunter2@127.0.0.1:1/test")
    with pytest.raises(BudgetBackendUnavailable) as pg_info:
        pg.reserve("r", [Charge(KEY, 100)], 1, 60)
    assert "hunter2" not in str(pg_info.value)
