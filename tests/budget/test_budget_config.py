"""BudgetConfig / UserBudget: which budgets a call is charged against, pressure near the limit, and the
once-per-window limit callback."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from cascadeflow.budget import BudgetConfig, BudgetState, Pressure, UserBudget, charges_for, pressure
from cascadeflow.errors import ConfigurationError
from cascadeflow.runtime.pipeline import Charge

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC).timestamp()


def test_documented_shape_works_and_grace_raises_the_hard_limit() -> None:
    calls: list[str] = []
    config = BudgetConfig(daily_limit=50.0, on_limit_exceeded=lambda: calls.append("cheap mode"), grace_period=0.1)
    charges = charges_for(config, now=NOW)
    assert charges == [Charge("global:day:2026-11-24", 55_000_000)]


def test_user_agent_and_global_budgets_all_apply() -> None:
    config = BudgetConfig(daily_limit=50.0, monthly_limit=900.0,
                          agent_budgets={"triage": UserBudget(daily=10.0)},
                          default_user_budget=UserBudget(daily=1.0))
    charges = charges_for(config, {"alice": UserBudget(daily=5.0, monthly=100.0)}, user_id="alice",
                          agent_id="triage", now=NOW)
    assert [(c.key, c.limit_micro) for c in charges] == [
        ("global:day:2026-11-24", 50_000_000), ("global:month:2026-11", 900_000_000),
        ("user:alice:day:2026-11-24", 5_000_000), ("user:alice:month:2026-11", 100_000_000),
        ("agent:triage:day:2026-11-24", 10_000_000),
    ]


def test_user_budget_lookup_order_call_then_config_then_default() -> None:
    config = BudgetConfig(user_budgets={"bob": UserBudget(daily=2.0)}, default_user_budget=UserBudget(daily=0.5))
    assert charges_for(config, user_id="bob", now=NOW)[0].limit_micro == 2_000_000
    assert charges_for(config, {"bob": UserBudget(daily=3.0)}, user_id="bob", now=NOW)[0].limit_micro == 3_000_000
    assert charges_for(config, user_id="zed", now=NOW) == [Charge("user:zed:day:2026-11-24", 500_000)]
    assert charges_for(BudgetConfig(), user_id="zed", agent_id="nobody", now=NOW) == []


def test_key_prefix_separates_applications() -> None:
    config = BudgetConfig(daily_limit=1.0, key_prefix="billing-app")
    assert charges_for(config, now=NOW)[0].key == "billing-app:global:day:2026-11-24"


@pytest.mark.parametrize("user_id", ["", "  ", "a\nb", 7])
def test_bad_user_id_is_refused(user_id: object) -> None:
    config = BudgetConfig(default_user_budget=UserBudget(daily=1.0))
    with pytest.raises(ConfigurationError, match="user_id"):
        charges_for(config, user_id=user_id, now=NOW)  # type: ignore[arg-type]


def _pressure(config: BudgetConfig, used: int, reserved: int = 0) -> Pressure:
    charges = charges_for(config, now=NOW)
    key = charges[0].key
    return pressure(config, charges, {key: BudgetState(key, used, reserved)})


def test_pressure_normal_then_degrade_then_stop() -> None:
    config = BudgetConfig(daily_limit=10.0, degrade_at=0.8)
    assert _pressure(config, 7_990_000).action == "normal"
    degrade = _pressure(config, 7_000_000, reserved=1_000_000)  # in-flight reservations count
    assert degrade.action == "degrade" and degrade.share == pytest.approx(0.8)
    assert "degrade at 80%" in degrade.reason and degrade.key == "global:day:2026-11-24"
    stop = _pressure(config, 10_000_000)
    assert stop.action == "stop" and stop.limit_reached and "hard limit" in stop.reason


def test_pressure_within_grace_degrades_and_cheapest_tier_serves_cheapest_only() -> None:
    grace = BudgetConfig(daily_limit=10.0, grace_period=0.1)
    within = _pressure(grace, 10_500_000)
    assert within.action == "degrade" and within.limit_reached and "grace" in within.reason
    assert _pressure(grace, 11_000_000).action == "stop"
    cheapest = BudgetConfig(daily_limit=10.0, grace_period=0.1, at_limit="cheapest_tier")
    assert _pressure(cheapest, 10_000_000).action == "cheapest_only"
    assert _pressure(cheapest, 11_000_000).action == "cheapest_only"
    assert _pressure(cheapest, 9_000_000).action == "degrade"


def test_pressure_reports_the_tightest_budget() -> None:
    config = BudgetConfig(daily_limit=100.0, user_budgets={"alice": UserBudget(daily=1.0)})
    charges = charges_for(config, user_id="alice", now=NOW)
    states = {"global:day:2026-11-24": BudgetState("global:day:2026-11-24", 50_000_000),
              "user:alice:day:2026-11-24": BudgetState("user:alice:day:2026-11-24", 900_000)}
    result = pressure(config, charges, states)
    assert result.key == "user:alice:day:2026-11-24" and result.action == "degrade"
    assert pressure(config, [], {}).action == "normal"


def test_limit_callback_fires_once_per_window() -> None:
    fired: list[Pressure] = []
    config = BudgetConfig(daily_limit=1.0, grace_period=0.2, on_limit_exceeded=fired.append)
    assert not config.notify_limit(_pressure(config, 900_000))  # below the limit
    assert config.notify_limit(_pressure(config, 1_000_000))
    assert not config.notify_limit(_pressure(config, 1_100_000))  # same day key: already fired
    tomorrow = charges_for(config, now=NOW + 86_400)
    key = tomorrow[0].key
    assert config.notify_limit(pressure(config, tomorrow, {key: BudgetState(key, 1_200_000)}))
    assert [p.key for p in fired] == ["global:day:2026-11-24", "global:day:2026-11-25"]


def test_limit_callback_without_arguments_and_a_failing_one(caplog: pytest.LogCaptureFixture) -> None:
    count = []
    config = BudgetConfig(daily_limit=1.0, on_limit_exceeded=lambda: count.append(1))
    config.notify_limit(_pressure(config, 1_000_000))
    assert count == [1]

    def broken() -> None:
        raise RuntimeError("pager down")

    failing = BudgetConfig(daily_limit=1.0, on_limit_exceeded=broken)
    with caplog.at_level(logging.ERROR):
        assert failing.notify_limit(_pressure(failing, 1_000_000))
    assert "pager down" in caplog.text


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"degrade_at": 0}, "degrade_at"), ({"degrade_at": 1.5}, "degrade_at"),
    ({"grace_period": -0.1}, "grace_period"), ({"grace_period": "x"}, "grace_period"),
    ({"at_limit": "panic"}, "at_limit"), ({"on_limit_exceeded": "call me"}, "callable"),
    ({"user_budgets": {"a": 5.0}}, "UserBudget"), ({"default_user_budget": 5.0}, "UserBudget"),
    ({"lease_seconds": 0}, "lease_seconds"),
])
def test_config_validation_messages(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        BudgetConfig(daily_limit=1.0, **kwargs)


def test_user_budget_needs_a_window() -> None:
    with pytest.raises(ConfigurationError, match="daily= and/or monthly="):
        UserBudget()


def test_a_user_budget_tallies_spend_per_utc_day_and_month():
    from decimal import Decimal

    budget = UserBudget(daily=5.0, monthly=100.0)
    assert (budget.daily_remaining, budget.monthly_remaining) == (5.0, 100.0)
    budget.spend(0.25)
    budget.spend(Decimal("4.75"))
    assert (budget.daily_remaining, budget.monthly_remaining) == (0.0, 95.0)
    budget.spend(1.0)
    assert budget.daily_remaining == -1.0  # over: the tally says so, it refuses nothing
    yesterday = datetime.now(UTC).timestamp() - 86_400
    fresh = UserBudget(daily=5.0)
    fresh.spend(3.0, now=yesterday)
    assert fresh.daily_remaining == 5.0 and fresh.monthly_remaining is None
    assert fresh == UserBudget(daily=5.0)  # the tally is not part of the budget's identity
    with pytest.raises(ConfigurationError, match="non-negative"):
        budget.spend(-1)
