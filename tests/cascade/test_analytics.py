"""get_analytics() totals and breakdowns; evaluate() with and without expected answers."""

from decimal import Decimal

import pytest

from cascadeflow.cascade.agent import CascadeAgent
from cascadeflow.cascade.evaluation import default_correctness
from cascadeflow.errors import CascadeExhausted, ConfigurationError, ServerError
from cascadeflow.models import ModelConfig
from cascadeflow.runtime.pipeline import Runtime
from cascadeflow.testing import ScriptedProvider

CHEAP = ModelConfig("gpt-4o-mini", provider="openai")
TOP = ModelConfig("gpt-4o", provider="openai")


def make_agent(script=None, default=None):
    provider = ScriptedProvider(script or {}, default=default)
    return CascadeAgent(models=[CHEAP, TOP], runtime=Runtime(resolve_provider=provider.resolver())), provider


async def test_analytics_totals_match_the_results():
    answer = "Disk usage on db-1 is at 61 percent; no action needed for the disk yet."
    agent, _ = make_agent({CHEAP.name: [answer, "", answer], TOP.name: [answer]})
    results = [await agent.run("Is disk usage on db-1 a problem?", metadata={"severity": sev, "task_type": task})
               for sev, task in (("INFO", "simple_classification"), ("P1", "complex_reasoning"),
                                 ("INFO", "simple_classification"))]
    a = agent.get_analytics()
    assert a.total_queries == 3
    assert a.total_cost == sum(r.total_cost for r in results)
    assert a.avg_cost_per_query == a.total_cost / 3
    assert a.drafter_acceptance_rate == pytest.approx(2 / 3) == a.drafter_acceptance
    assert a.drafter_usage == pytest.approx(2 / 3) and a.verifier_usage == pytest.approx(1 / 3)
    assert a.baseline_cost == sum(r.baseline_cost for r in results)
    assert a.total_savings == a.baseline_cost - a.total_cost
    assert a.cost_savings_pct == a.savings_pct == pytest.approx(float(a.total_savings / a.baseline_cost))
    assert a.usage_per_tier[CHEAP.id].calls == 3 and a.usage_per_tier[CHEAP.id].accepted == 2
    assert a.usage_per_tier[TOP.id].calls == 1 and a.usage_per_tier[TOP.id].accepted == 1
    assert a.by_severity["INFO"].calls == 2 and a.by_severity["P1"].cost == results[1].total_cost
    assert a.by_task_type["complex_reasoning"].describe() == \
        f"complex_reasoning consumed ${float(results[1].total_cost):.4f} across 1 call"
    assert a.by_route["default"].calls == 3
    assert a.expensive_queries[0] == (results[1].total_cost, results[1].request_id)
    assert a.p50_latency_ms > 0 and a.avg_latency_ms > 0
    assert a.avg_validator_score == pytest.approx(sum(r.score for r in results) / 3)
    agent.reset_analytics()
    assert agent.get_analytics().total_queries == 0


async def test_failed_runs_count_their_cost_but_not_as_queries():
    agent, _ = make_agent({CHEAP.name: [""], TOP.name: [ServerError("down")]})
    with pytest.raises(CascadeExhausted):
        await agent.run("What broke the deploy?")
    a = agent.get_analytics()
    assert a.total_queries == 0 and a.errors == 1 and a.total_cost > 0


def test_empty_analytics_are_zero_not_errors():
    agent, _ = make_agent()
    a = agent.get_analytics()
    assert (a.total_queries, a.total_cost, a.avg_cost_per_query, a.cost_savings_pct) == (0, 0, Decimal(0), 0.0)


async def test_evaluate_with_expected_answers_measures_correctness():
    def reply(request):
        q = request.messages[-1].text
        if "7 * 6" in q:
            return "7 * 6 = 42, so the answer is 42."
        if "capital of France" in q:
            return "The capital of France is Paris."
        return "The sum 2 + 2 = 5, so the answer is 5."  # wrong arithmetic: rejected, then TOP answers

    agent, _ = make_agent(default=reply)
    metrics = await agent.evaluate([("What is 7 * 6?", 42), {"query": "What is the capital of France?",
                                                              "expected": "paris"}, ("What is 2 + 2?", "4")])
    assert metrics.quality_source == "correctness" and metrics.n == 3 and metrics.scored == 3
    assert metrics.avg_quality == pytest.approx(2 / 3)  # the top tier repeats the wrong answer in this script
    assert metrics.drafter_acceptance == pytest.approx(2 / 3)
    assert metrics.avg_cost == metrics.total_cost / 3
    assert metrics.acceptance_rate == metrics.drafter_acceptance


async def test_evaluate_without_labels_reports_the_validator_score_labelled_as_such():
    agent, _ = make_agent(default=lambda req: f"Here is the answer about {req.messages[-1].text}")
    metrics = await agent.evaluate(["Why is the queue backing up?", "Why is latency high on checkout?"])
    assert metrics.quality_source == "validator_score"
    assert metrics.avg_quality == pytest.approx(sum(r.score for r in metrics.results) / 2)


async def test_evaluate_with_a_custom_scorer_and_failures():
    agent, _ = make_agent({CHEAP.name: ["", "Checkout latency comes from the payment call."],
                           TOP.name: [ServerError("down")]})
    metrics = await agent.evaluate(["Why does checkout fail?", "Why is checkout latency high?"],
                                   scorer=lambda answer, expected: "payment" in answer, concurrency=1)
    assert metrics.failed == 1 and metrics.n == 2
    assert metrics.avg_quality == 0.5  # the failed query counts as wrong
    assert metrics.total_cost > sum(r.total_cost for r in metrics.results)  # the failed query's draft cost


async def test_evaluate_rejects_bad_test_queries():
    agent, _ = make_agent()
    with pytest.raises(ConfigurationError, match="at least one"):
        await agent.evaluate([])
    with pytest.raises(ConfigurationError, match="test query 0"):
        await agent.evaluate([{"expected": 1}])


@pytest.mark.parametrize("answer, expected, score", [
    ("so the total is 1,250 dollars", "1250", 1.0), ("The answer: 18", "# 18", 1.0), ("it is 17", 18, 0.0),
    ("Paris is the capital", "paris", 1.0), ("Lyon", "Paris", 0.0), ("no numbers", "3", 0.0)])
def test_default_correctness(answer, expected, score):
    assert default_correctness(answer, expected) == score
