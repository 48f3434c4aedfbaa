"""Retries that cannot storm: the per-provider retry budget, and what is never retried."""

from __future__ import annotations

import pytest
from loopback import ManualClock, RecordedSleep, Reply

from cascadeflow.errors import ConfigurationError, ServerError
from cascadeflow.messages import build_request
from cascadeflow.providers.http import CircuitBreakers, HttpOptions, RetryPolicy
from cascadeflow.providers.openai_chat import OpenAIChat
from cascadeflow.providers.retry import RetryBudget, RetryBudgets, RetryBudgetSettings


def test_the_budget_allows_its_reserve_then_a_share_of_first_attempts():
    clock = ManualClock()
    budget = RetryBudget(settings=RetryBudgetSettings(ratio=0.5, reserve=2, per_second=0), clock=clock)
    assert budget.spend() and budget.spend() and not budget.spend()
    budget.earn()
    assert not budget.spend()  # half a retry earned
    budget.earn()
    assert budget.spend() and not budget.spend()


def test_the_budget_refills_over_time_up_to_its_reserve():
    clock = ManualClock()
    budget = RetryBudget(settings=RetryBudgetSettings(ratio=0, reserve=3, per_second=1), clock=clock)
    for _ in range(3):
        assert budget.spend()
    assert not budget.spend()
    clock.advance(100)
    assert [budget.spend() for _ in range(4)] == [True, True, True, False]


@pytest.mark.parametrize("field", ["ratio", "reserve", "per_second"])
@pytest.mark.parametrize("bad", [-1, float("nan"), "x"])
def test_invalid_budget_settings_are_refused(field, bad):
    with pytest.raises(ConfigurationError, match=field):
        RetryBudgetSettings(**{field: bad})


@pytest.mark.parametrize("bad", [0, -1, 2.5, "3"])
def test_invalid_attempt_counts_are_refused(bad):
    with pytest.raises(ConfigurationError, match="max_attempts"):
        RetryPolicy(max_attempts=bad)


async def test_an_outage_is_retried_only_within_the_providers_budget(openai_server):
    openai_server.default = Reply(status=503, error="down")
    budgets = RetryBudgets(settings=RetryBudgetSettings(ratio=0.5, reserve=1, per_second=0), clock=ManualClock())
    sleep = RecordedSleep()
    chat = OpenAIChat("vllm", base_url=openai_server.base_url,
                      http=HttpOptions(sleep=sleep, breakers=CircuitBreakers(), retry_budgets=budgets))
    for i in range(10):
        with pytest.raises(ServerError):
            await chat.complete(build_request("hi", model=f"m{i}"))  # distinct breakers: never open
    # 10 first attempts + 1 reserved retry + 4 earned (every second call earns one), not 10 x 3 requests
    assert len(openai_server.requests) == 15 and len(sleep.waits) == 5
