"""Property tests: a result's cost is the sum of its tiers, and savings agree with the baseline."""

import asyncio
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from cascadeflow.cascade.agent import CascadeAgent
from cascadeflow.errors import CascadeExhausted, ServerError
from cascadeflow.messages import Response, Usage
from cascadeflow.models import ModelConfig
from cascadeflow.runtime.pipeline import Runtime
from cascadeflow.testing import ScriptedProvider

TIERS = [ModelConfig("llama-3.1-8b-instant", provider="groq"), ModelConfig("gpt-4o-mini", provider="openai"),
         ModelConfig("gpt-4o", provider="openai")]
QUERY = "Why is the payments queue backing up?"
GOOD = "The payments queue is backing up because the consumer pool is saturated; scale the consumers."

outcome = st.one_of(
    st.tuples(st.just("good"), st.integers(1, 5000), st.integers(1, 3000)),
    st.tuples(st.just("bad"), st.integers(1, 5000), st.integers(1, 3000)),
    st.tuples(st.just("error"), st.just(0), st.just(0)),
)


def reply(kind, tokens_in, tokens_out):
    if kind == "error":
        return ServerError("upstream 502")
    text = GOOD if kind == "good" else ""
    return Response(content=text, model="", provider="fake", usage=Usage(tokens_in, tokens_out))


@settings(max_examples=150, deadline=None)
@given(st.lists(outcome, min_size=3, max_size=3), st.integers(1, 3))
def test_cost_is_the_sum_of_tiers_and_savings_match_the_baseline(outcomes, n_tiers):
    tiers = TIERS[-n_tiers:]
    provider = ScriptedProvider({cfg.name: [reply(*o)] for cfg, o in zip(tiers, outcomes, strict=False)})
    runtime = Runtime(resolve_provider=provider.resolver())
    agent = CascadeAgent(models=tiers, runtime=runtime)
    try:
        result = asyncio.run(agent.run(QUERY))
    except CascadeExhausted as exc:
        assert exc.attempts[-1].decision == "error"
        assert all(a.decision in ("rejected", "error") for a in exc.attempts)
        assert agent.get_analytics().total_cost_decimal == sum((a.cost_decimal for a in exc.attempts), Decimal(0))
        return
    assert result.total_cost_decimal == sum((t.cost_decimal for t in result.tiers), Decimal(0))
    for t, (kind, tokens_in, tokens_out) in zip(result.tiers, outcomes, strict=False):
        cfg = tiers[t.tier]
        expected = runtime.price_book.cost(cfg, Usage(tokens_in, tokens_out)) if kind != "error" else 0
        assert t.cost_decimal == expected
    assert result.savings_decimal == result.baseline_cost_decimal - result.total_cost_decimal
    top = tiers[-1]
    top_called = [t for t in result.tiers if t.model == top.id and t.decision != "error"]
    if top_called:
        assert not result.baseline_estimated and result.baseline_cost_decimal == top_called[0].cost_decimal
    else:
        answer = result.response.usage
        assert result.baseline_estimated
        assert result.baseline_cost_decimal == runtime.price_book.cost(top, Usage(answer.input_tokens, answer.output_tokens))
    if result.baseline_cost_decimal > 0:
        assert abs(result.savings_pct - float(result.savings_decimal / result.baseline_cost_decimal)) < 1e-12
    # a rejected draft is never what comes back
    returned = next(t for t in reversed(result.tiers) if t.decision in ("accepted", "final"))
    assert result.model_used == returned.model
