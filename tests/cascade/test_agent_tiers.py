"""Tier ordering against the price book, single-model routes, middle-tier acceptance and the baseline."""

from decimal import Decimal

import pytest

from cascadeflow.cascade.agent import CascadeAgent
from cascadeflow.cascade.result import TierAttempt
from cascadeflow.cascade.tiers import baseline, blended_price, check_tier_order
from cascadeflow.errors import ConfigurationError
from cascadeflow.messages import Response, Usage
from cascadeflow.models import ModelConfig
from cascadeflow.pricing import PriceBook
from cascadeflow.runtime.pipeline import Runtime
from cascadeflow.testing import ScriptedProvider

BOOK = PriceBook()
LOCAL = ModelConfig("llama3.2:3b", provider="ollama")  # self-hosted: $0
GPU = ModelConfig("qwen", provider="vllm", compute_cost_per_hour=2.0)  # priced by machine time
MINI = ModelConfig("gpt-4o-mini", provider="openai")
BIG = ModelConfig("gpt-4o", provider="openai")
QUERY = "How should we size the checkout database connection pool?"
ANSWER = "Size the checkout database connection pool to the peak concurrent queries plus headroom, about 20."


def test_blended_price_is_input_plus_output_per_million():
    assert blended_price(BOOK.rates(MINI)) == Decimal("0.75")
    assert blended_price(BOOK.rates(LOCAL)) == 0
    assert blended_price(BOOK.rates(GPU)) is None


def test_free_self_hosted_first_is_ordered_and_last_is_not():
    check_tier_order([LOCAL, MINI, BIG], BOOK, allow_unordered=False)
    with pytest.raises(ConfigurationError, match="openai/gpt-4o-mini"):
        check_tier_order([MINI, LOCAL], BOOK, allow_unordered=False)


def test_compute_priced_tiers_are_not_compared():
    check_tier_order([BIG, GPU, MINI], BOOK, allow_unordered=True)
    check_tier_order([GPU, BIG], BOOK, allow_unordered=False)
    check_tier_order([BIG, GPU], BOOK, allow_unordered=False)  # no per-token price to compare with


def test_empty_tier_list_is_rejected():
    with pytest.raises(ConfigurationError, match="empty"):
        check_tier_order([], BOOK, allow_unordered=False)


def test_baseline_prices_the_answer_at_the_top_tier_when_it_was_not_called():
    answer = Response(content="x", model="gpt-4o-mini", provider="openai", usage=Usage(1000, 500))
    attempts = [TierAttempt(tier=0, model=MINI.id, decision="accepted", reason="ok",
                            cost_decimal=Decimal("0.00045"))]
    cost, estimated = baseline(BIG, attempts, answer, BOOK)
    assert estimated and cost == (1000 * Decimal("2.5") + 500 * Decimal(10)) / 1_000_000


def test_baseline_is_the_actual_cost_when_the_top_tier_answered_even_if_rejected():
    answer = Response(content="x", model="gpt-4o", provider="openai", usage=Usage(10, 10))
    attempts = [TierAttempt(tier=0, model=BIG.id, decision="rejected", reason="weak",
                            cost_decimal=Decimal("0.01"))]
    assert baseline(BIG, attempts, answer, BOOK) == (Decimal("0.01"), False)
    failed = [TierAttempt(tier=0, model=BIG.id, decision="error", reason="error", error="ServerError: x")]
    assert baseline(BIG, failed, answer, BOOK)[1] is True


def make_agent(models, script):
    provider = ScriptedProvider(script)
    return CascadeAgent(models=models, runtime=Runtime(resolve_provider=provider.resolver())), provider


async def test_a_single_model_agent_returns_its_answer_as_final_with_zero_savings():
    agent, _ = make_agent([MINI], {MINI.name: [ANSWER]})
    result = await agent.run(QUERY)
    assert [(t.decision, t.reason) for t in result.tiers] == [("final", "single model")]
    assert not result.draft_accepted and not result.baseline_estimated
    assert result.savings_decimal == 0 and result.savings_pct == 0.0
    assert agent.get_analytics().drafter_acceptance_rate == 0.0  # nothing was cascaded


async def test_a_middle_tier_acceptance_estimates_the_baseline_from_its_answer():
    agent, provider = make_agent([LOCAL, MINI, BIG], {LOCAL.name: [""], MINI.name: [ANSWER]})
    result = await agent.run(QUERY)
    assert [t.decision for t in result.tiers] == ["rejected", "accepted"]
    assert result.tiers[0].cost_decimal == 0  # self-hosted
    usage = result.response.usage
    assert result.baseline_estimated
    assert result.baseline_cost_decimal == BOOK.cost(BIG, Usage(usage.input_tokens, usage.output_tokens))
    assert [r.model for r in provider.requests] == [LOCAL.name, MINI.name]
    assert agent.get_analytics().verifier_usage == 1.0


async def test_string_model_ids_are_accepted_as_tiers():
    agent, _ = make_agent(["openai/gpt-4o-mini", "gpt-4o"], {"gpt-4o-mini": [ANSWER]})
    assert [m.id for m in agent.models] == [MINI.id, BIG.id]
    assert (await agent.run(QUERY)).model_used == MINI.id
