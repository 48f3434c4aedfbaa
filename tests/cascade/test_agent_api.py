"""CascadeAgent's call shapes: float costs users compute with, the exact amounts beside them, a hook per
finished query, a caller-forced model, unknown options refused, the budget and quality analytics read."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from cascadeflow import BudgetConfig, BudgetExceeded, BudgetExceededError, InvalidRequestError
from cascadeflow.cascade.agent import CascadeAgent
from cascadeflow.errors import ConfigurationError
from cascadeflow.models import ModelConfig
from cascadeflow.runtime.pipeline import Runtime
from cascadeflow.testing import ScriptedProvider

CHEAP = ModelConfig("llama-3.1-8b-instant", provider="groq")
TOP = ModelConfig("gpt-4o", provider="openai")
QUERY = "Why does the Postgres disk on db-7 keep filling with WAL after the deploy?"
GOOD = ("Postgres keeps WAL segments while a replication slot lags: the slot left by the retired replica "
        "pins them, so drop the stale slot on db-7 and the disk frees; then verify archive_command succeeds.")


def make_agent(**kw):
    provider = ScriptedProvider(default=GOOD)
    runtime = Runtime(resolve_provider=provider.resolver(), sinks=[], ledger=kw.pop("ledger", None))
    return CascadeAgent(models=[CHEAP, TOP], runtime=runtime, **kw), provider


async def test_costs_are_float_usd_with_the_exact_decimals_beside_them():
    agent, _ = make_agent()
    result = await agent.run(QUERY)
    assert type(result.total_cost) is float and type(result.baseline_cost) is float
    assert type(result.tiers[0].cost) is float and type(result.savings) is float
    assert isinstance(result.total_cost_decimal, Decimal) and result.total_cost == float(result.total_cost_decimal)
    analytics = agent.get_analytics()
    assert type(analytics.total_cost) is float and type(analytics.avg_cost_per_query) is float
    assert analytics.total_cost_decimal == result.total_cost_decimal
    # what users write: float arithmetic mixing their own numbers with ours
    baseline_monthly = 10_000 * 500 / 1_000_000 * 0.00625 * 30
    assert baseline_monthly - analytics.total_cost * 30 == pytest.approx(0.9375 - result.total_cost * 30)


async def test_on_query_complete_sees_every_result_and_its_error_reaches_the_caller():
    seen = []

    def enforce_budget(result):
        seen.append((result.user_id, result.total_cost))
        if len(seen) == 2:
            raise BudgetExceededError("daily budget exceeded for alice")

    agent, _ = make_agent(on_query_complete=enforce_budget)
    first = await agent.run(QUERY, user_id="alice")
    with pytest.raises(BudgetExceeded, match="alice"):
        await agent.run(QUERY, user_id="alice")
    assert seen == [("alice", first.total_cost), ("alice", first.total_cost)]
    assert agent.get_analytics().total_queries == 2  # the answer was counted before the hook ran


async def test_on_query_complete_may_be_a_coroutine_function():
    seen = []

    async def record(result):
        seen.append(result.request_id)

    agent, _ = make_agent(on_query_complete=record)
    result = await agent.run(QUERY)
    assert seen == [result.request_id]


def test_on_query_complete_must_be_callable():
    with pytest.raises(ConfigurationError, match="on_query_complete"):
        CascadeAgent(models=[CHEAP, TOP], on_query_complete="log it")


async def test_model_forces_that_model_alone_by_name_or_id():
    agent, provider = make_agent()
    by_name = await agent.run(QUERY, model="gpt-4o")
    by_id = await agent.run(QUERY, model="groq/llama-3.1-8b-instant")
    assert [r.model for r in provider.requests] == ["gpt-4o", "llama-3.1-8b-instant"]
    assert by_name.model_used == "openai/gpt-4o" and len(by_name.tiers) == 1
    assert by_name.routing_reason == "model chosen by the caller" and by_id.model_used == CHEAP.id


async def test_an_unknown_option_is_refused_naming_the_accepted_ones():
    agent, provider = make_agent()
    with pytest.raises(InvalidRequestError, match=r"unknown option foo; accepted: .*temperature.*extra_body"):
        await agent.run(QUERY, foo=1)
    assert provider.requests == []
    await agent.run(QUERY, seed=7, extra_body={"foo": 1})
    assert provider.requests[0].extra == {"seed": 7, "foo": 1}


async def test_analytics_carry_avg_quality_and_the_budget_they_are_read_against():
    agent, _ = make_agent()
    await agent.run(QUERY)
    analytics = agent.get_analytics()
    assert analytics.avg_quality == analytics.avg_validator_score is not None
    assert analytics.budget == math.inf  # no budget: "near the limit" never reads true
    from cascadeflow.budget import open_ledger

    budgeted, _ = make_agent(budget_config=BudgetConfig(daily_limit=2.0, monthly_limit=30.0),
                             ledger=open_ledger("memory://"))
    assert budgeted.get_analytics().budget == 30.0
    daily, _ = make_agent(budget_config=BudgetConfig(daily_limit=2.0), ledger=open_ledger("memory://"))
    assert daily.get_analytics().budget == 2.0


async def test_on_limit_exceeded_fires_on_the_first_refusal_below_the_limit():
    from cascadeflow.budget import open_ledger

    fired = []
    config = BudgetConfig(daily_limit=0.000001, on_limit_exceeded=lambda pressure: fired.append(pressure))
    agent, provider = make_agent(budget_config=config, ledger=open_ledger("memory://"))
    for _ in range(2):
        with pytest.raises(BudgetExceeded):
            await agent.run(QUERY)
    assert provider.requests == [] and len(fired) == 1  # nothing spent yet; once per window
    assert fired[0].key.startswith("global:day:") and "refused" in fired[0].reason
