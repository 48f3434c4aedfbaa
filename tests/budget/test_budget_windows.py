"""Windows live in the key: a new day or month is a new key, in the configured time zone, with no reset job."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from budget_support import FakeClock, LedgerFactory

from cascadeflow.budget import BudgetConfig, UserBudget, charges_for, window_key
from cascadeflow.budget.windows import local_time, resolve_timezone, window_label
from cascadeflow.errors import BudgetExceeded, ConfigurationError


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_day_key_rolls_over_at_midnight_utc() -> None:
    assert window_key("user:alice", "day", ts("2026-11-24T23:59:59.999+00:00")) == "user:alice:day:2026-11-24"
    assert window_key("user:alice", "day", ts("2026-11-25T00:00:00+00:00")) == "user:alice:day:2026-11-25"


@pytest.mark.parametrize(("before", "after", "month_before", "month_after"), [
    ("2026-11-30T23:59:59+00:00", "2026-12-01T00:00:00+00:00", "2026-11", "2026-12"),
    ("2026-12-31T23:59:59+00:00", "2027-01-01T00:00:00+00:00", "2026-12", "2027-01"),
    ("2028-02-29T23:59:59+00:00", "2028-03-01T00:00:00+00:00", "2028-02", "2028-03"),
])
def test_month_key_rolls_over_at_month_end(before: str, after: str, month_before: str, month_after: str) -> None:
    assert window_label("month", ts(before)) == month_before
    assert window_label("month", ts(after)) == month_after


def test_same_instant_falls_in_different_days_per_time_zone() -> None:
    instant = ts("2026-11-25T03:00:00+00:00")  # 22:00 on the 24th in New York
    assert window_key("global", "day", instant, "UTC") == "global:day:2026-11-25"
    assert window_key("global", "day", instant, "America/New_York") == "global:day:2026-11-24"
    assert window_key("global", "day", instant, "Asia/Tokyo") == "global:day:2026-11-25"
    month_end = ts("2026-12-01T02:00:00+00:00")
    assert window_key("global", "month", month_end, "America/New_York") == "global:month:2026-11"
    assert window_key("global", "month", month_end, "UTC") == "global:month:2026-12"


def test_new_york_midnight_is_the_day_boundary_across_a_dst_change() -> None:
    # 2026-11-01 is 25 hours long in New York (clocks go back at 02:00 EDT)
    tz = "America/New_York"
    assert window_label("day", ts("2026-11-01T04:00:00+00:00"), tz) == "2026-11-01"  # 00:00 EDT
    assert window_label("day", ts("2026-11-02T04:59:59+00:00"), tz) == "2026-11-01"  # 23:59:59 EST
    assert window_label("day", ts("2026-11-02T05:00:00+00:00"), tz) == "2026-11-02"


def test_aware_datetimes_are_accepted_and_naive_ones_refused() -> None:
    aware = datetime(2026, 11, 24, 23, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    assert window_label("day", aware, "UTC") == "2026-11-24"
    assert local_time(aware, "UTC").hour == 22
    with pytest.raises(ConfigurationError, match="naive"):
        window_label("day", datetime(2026, 11, 24, 12, 0))


@pytest.mark.parametrize("bad", ["Mars/Olympus", "", "not a zone", 5])
def test_unknown_time_zone_is_a_configuration_error(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="IANA"):
        resolve_timezone(bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        BudgetConfig(daily_limit=1.0, timezone=bad)  # type: ignore[arg-type]


def test_unknown_period_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="period"):
        window_label("week", 0.0)  # type: ignore[arg-type]


@pytest.mark.backends("memory", "sqlite")
def test_daily_budget_is_usable_again_after_midnight(make_ledger: LedgerFactory) -> None:
    clock = FakeClock(ts("2026-11-24T23:58:00+00:00"))
    ledger = make_ledger(clock=clock)
    config = BudgetConfig(user_budgets={"alice": UserBudget(daily=1.0, monthly=1.5)})

    def spend(rid: str, amount: int) -> None:
        charges = charges_for(config, user_id="alice", now=clock())
        ledger.reserve(rid, charges, amount, 60)
        ledger.settle(rid, amount)

    spend("a", 1_000_000)
    with pytest.raises(BudgetExceeded) as info:
        spend("b", 1)
    assert info.value.key == "user:alice:day:2026-11-24"
    clock.advance(120)  # 00:00 on the 25th: a new day key, the month key carries over
    spend("c", 400_000)
    with pytest.raises(BudgetExceeded) as info:
        spend("d", 200_000)
    assert info.value.key == "user:alice:month:2026-11"
    assert ledger.state("user:alice:day:2026-11-25").spent == 400_000


@pytest.mark.backends("memory")
def test_monthly_budget_rolls_over_at_month_end_in_the_configured_zone(make_ledger: LedgerFactory) -> None:
    # 23:30 on Nov 30 in New York is already December in UTC
    clock = FakeClock(ts("2026-12-01T04:30:00+00:00"))
    ledger = make_ledger(clock=clock)
    config = BudgetConfig(monthly_limit=2.0, timezone="America/New_York")
    charges = charges_for(config, now=clock())
    assert [c.key for c in charges] == ["global:month:2026-11"]
    ledger.reserve("nov", charges, 2_000_000, 60)
    with pytest.raises(BudgetExceeded):
        ledger.reserve("nov-more", charges_for(config, now=clock()), 1, 60)
    clock.advance(3600)  # 00:30 on Dec 1 in New York
    assert ledger.reserve("dec", charges_for(config, now=clock()), 2_000_000, 60).status == "held"
    assert ledger.state("global:month:2026-12").reserved == 2_000_000
    utc_config = BudgetConfig(monthly_limit=2.0)
    assert charges_for(utc_config, now=datetime(2026, 12, 1, 4, 30, tzinfo=UTC))[0].key == "global:month:2026-12"
