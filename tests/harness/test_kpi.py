"""KPI-weighted model choice from measured statistics."""

from __future__ import annotations

import pytest

from cascadeflow import harness
from cascadeflow.errors import ConfigurationError
from cascadeflow.harness.kpi import choose_model, validate_weights
from cascadeflow.harness.stats import ModelStats
from cascadeflow.messages import Response, Usage
from cascadeflow.models import ModelConfig
from cascadeflow.pricing import PriceBook

MINI = ModelConfig("mini", provider="openai", input_price_per_million=1, output_price_per_million=1)
BIG = ModelConfig("big", provider="openai", input_price_per_million=10, output_price_per_million=10)
OTHER = ModelConfig("claude-x", provider="anthropic", input_price_per_million=0.1, output_price_per_million=0.1)


def measured(**per_model):
    stats = ModelStats(alpha=1.0)  # alpha 1: the last observation is the average, so numbers are exact
    for model, (latency, tokens, quality) in per_model.items():
        stats.observe_attempt(model, latency_ms=latency, output_tokens=tokens)
        stats.observe_verdict(model, quality)
    return stats


def test_scores_follow_the_documented_formula():
    stats = measured(**{"openai/mini": (100, 100, 0.5), "openai/big": (400, 100, 1.0)})
    choice = choose_model([MINI, BIG], {"quality": 0.6, "cost": 0.3, "latency": 0.1}, stats, PriceBook(), 100)
    # cost: mini 200 tokens x $1/M, big x $10/M -> s_cost = 1.0 and 0.1; latency 100 vs 400 -> 1.0 and 0.25
    assert choice.scores["openai/mini"] == {"quality": 0.5, "cost": 1.0, "latency": 1.0, "score": 0.7}
    assert choice.scores["openai/big"] == {"quality": 1.0, "cost": 0.1, "latency": 0.25, "score": 0.655}
    assert choice.model is MINI


def test_quality_heavy_weights_pick_the_better_model():
    stats = measured(**{"openai/mini": (100, 100, 0.5), "openai/big": (400, 100, 1.0)})
    choice = choose_model([MINI, BIG], {"quality": 0.9, "cost": 0.1}, stats, PriceBook(), 100)
    assert choice.model is BIG and choice.dimensions == ("quality", "cost")


def test_no_statistics_yet_is_said_in_the_reason():
    choice = choose_model([MINI, BIG], {"cost": 1.0}, ModelStats(), PriceBook(), 100)
    assert choice.model is None and "no statistics yet" in choice.reason


def test_unmeasured_candidates_are_named_not_guessed():
    stats = measured(**{"openai/mini": (100, 10, 1.0)})
    choice = choose_model([MINI, BIG], {"cost": 1.0}, stats, PriceBook(), 100)
    assert choice.model is MINI and "not yet measured: openai/big" in choice.reason
    assert list(choice.scores) == ["openai/mini"]


@pytest.mark.parametrize("weights, message", [
    ({"speed": 1.0}, "unknown kpi_weights"),
    ({"cost": -1}, "non-negative"),
    ({"cost": 0}, "all zero"),
    ([("cost", 1)], "must be a dict"),
])
def test_bad_weights(weights, message):
    with pytest.raises(ConfigurationError, match=message):
        validate_weights(weights)


async def test_run_with_kpi_weights_switches_to_the_measured_best_same_provider_model(scripted, call):
    provider, runtime = scripted
    provider.default = lambda request: Response("answer", request.model, "fake", Usage(10, 10))
    harness.init(mode="enforce", audit=False)
    with harness.run():  # measure both models first: attempts feed the statistics
        await call(runtime, model=MINI)
        await call(runtime, model=BIG)
        await call(runtime, model=OTHER)
    with harness.run(kpi_weights={"cost": 0.9, "quality": 0.1}, models=[MINI, BIG, OTHER]) as session:
        await call(runtime, model=BIG)
    assert provider.requests[-1].model == "mini"  # cheapest measured openai model; never the anthropic one
    switch = next(r for r in session.trace() if r.action == "switch_model")
    assert switch.applied and set(switch.details["kpi_scores"]) == {"openai/mini", "openai/big"}
    assert switch.details["kpi_scores"]["openai/mini"]["cost"] == 1.0


async def test_kpi_without_statistics_keeps_the_model_and_says_why(scripted, call):
    provider, runtime = scripted
    harness.init(mode="enforce", audit=False)
    with harness.run(kpi_weights={"latency": 1.0}, models=[MINI, BIG]) as session:
        await call(runtime, model=BIG)
    assert provider.requests[0].model == "big"
    assert "no statistics yet" in session.trace()[0].reason


def test_cascade_verdicts_feed_quality():
    stats = harness.model_stats()
    from cascadeflow.runtime.pipeline import CallContext

    harness.init(mode="observe", audit=False)
    with harness.run() as scope:
        ctx = CallContext(request_id="r1", scope=scope, mode="observe")
        ctx.decide("escalate", "low confidence", model_used="openai/mini", score=0.2)
        ctx.decide("accept", "ok", model_used="openai/big", score=0.9)
        scope.record(ctx)
    assert stats.get("openai/mini").quality == 0.0 and stats.get("openai/big").quality == 1.0
    assert [r.action for r in scope.trace()] == ["escalate", "accept"]


async def test_observe_mode_records_the_kpi_switch_without_making_it(scripted, call):
    provider, runtime = scripted
    provider.default = lambda request: Response("answer", request.model, "fake", Usage(10, 10))
    harness.init(mode="observe", audit=False)
    with harness.run():
        await call(runtime, model=MINI)
        await call(runtime, model=BIG)
    with harness.run(kpi_weights={"cost": 1.0}, models=[MINI, BIG]) as session:
        await call(runtime, model=BIG)
    assert provider.requests[-1].model == "big"
    switch = next(r for r in session.trace() if r.action == "switch_model")
    assert switch.applied is False and switch.model_used == "openai/big" and "KPI score" in switch.reason
    assert switch.details["candidate"] == "openai/mini"


async def test_kpi_weights_with_nothing_to_choose_between_say_so_in_the_trace(scripted, call):
    _provider, runtime = scripted
    harness.init(mode="enforce", audit=False)
    with harness.run(kpi_weights={"quality": 0.6, "cost": 0.4}) as session:
        await call(runtime, MINI)
    [kpi] = [r for r in session.trace() if r.details.get("policy") == "kpi"]
    assert kpi.action == "allow" and kpi.model_used == "openai/mini"
    assert "nothing to choose between" in kpi.reason and "run(models=" in kpi.reason
    assert kpi.details["kpi_candidates"] == ["openai/mini"]
