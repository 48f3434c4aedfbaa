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
    assert a.total_cost_decimal == sum(r.total_cost_decimal for r in results)
    assert a.avg_cost_per_query == float(a.total_cost_decimal / 3)
    assert a.drafter_acceptance_rate == pytest.approx(2 / 3) == a.drafter_acceptance
    assert a.drafter_usage == pytest.approx(2 / 3) and a.verifier_usage == pytest.approx(1 / 3)
    assert a.baseline_cost_decimal == sum(r.baseline_cost_decimal for r in results)
    assert a.total_savings_decimal == a.baseline_cost_decimal - a.total_cost_decimal
    assert a.cost_savings_pct == a.savings_pct == pytest.approx(float(a.total_savings_decimal / a.baseline_cost_decimal))
    assert a.usage_per_tier[CHEAP.id].calls == 3 and a.usage_per_tier[CHEAP.id].accepted == 2
    assert a.usage_per_tier[TOP.id].calls == 1 and a.usage_per_tier[TOP.id].accepted == 1
    assert a.by_severity["INFO"].calls == 2 and a.by_severity["P1"].cost_decimal == results[1].total_cost_decimal
    assert a.by_task_type["complex_reasoning"].describe() == \
        f"complex_reasoning consumed ${float(results[1].total_cost_decimal):.4f} across 1 call"
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
    assert a.total_queries == 0 and a.errors == 1 and a.total_cost_decimal > 0


def test_empty_analytics_are_zero_not_errors():
    agent, _ = make_agent()
    a = agent.get_analytics()
    assert (a.total_queries, a.total_cost_decimal, a.avg_cost_per_query, a.cost_savings_pct) == (0, 0, Decimal(0), 0.0)


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
    assert metrics.avg_cost == float(metrics.total_cost_decimal / 3)
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
    assert metrics.total_cost_decimal > sum(r.total_cost_decimal for r in metrics.results)  # the failed query's draft cost


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


def test_breakdown_describe_uses_the_singular_for_one_call():
    from cascadeflow.cascade.analytics import Breakdown

    assert Breakdown("memory_recall", calls=1, cost_decimal=Decimal("0.0117")).describe() == \
        "memory_recall consumed $0.0117 across 1 call"
    assert Breakdown("x", calls=6, cost_decimal=Decimal("0.01171")).describe() == "x consumed $0.0117 across 6 calls"


def test_snapshot_describe_lists_task_types_and_severities():
    from cascadeflow.cascade.analytics import AnalyticsSnapshot, Breakdown

    snap = AnalyticsSnapshot(
        total_queries=2, total_cost=1.0, avg_cost_per_query=0.5, drafter_acceptance_rate=0.5,
        drafter_usage=0.5, verifier_usage=0.5, baseline_cost=2.0, total_savings=1.0,
        cost_savings_pct=0.5, avg_latency_ms=1, p50_latency_ms=1, p95_latency_ms=1, errors=0,
        avg_validator_score=None, usage_per_tier={}, by_route={},
        by_task_type={"complex_reasoning": Breakdown("complex_reasoning", 2, Decimal("0.0493"))},
        by_severity={"P1": Breakdown("P1", 2, Decimal("0.0493"))},
        total_cost_decimal=Decimal(1), baseline_cost_decimal=Decimal(2), total_savings_decimal=Decimal(1))
    assert snap.describe() == ["complex_reasoning consumed $0.0493 across 2 calls",
                               "severity P1 consumed $0.0493 across 2 calls"]


async def test_evaluate_accepts_test_query_objects_with_their_own_metadata():
    from cascadeflow.cascade.evaluation import TestQuery

    agent, provider = make_agent(default=lambda req: "The capital of France is Paris.")
    metrics = await agent.evaluate([TestQuery("What is the capital of France?", "Paris", {"task_type": "qa"})])
    assert metrics.avg_quality == 1.0 and provider.requests[0].metadata == {"task_type": "qa"}
    assert agent.get_analytics().by_task_type["qa"].calls == 1


async def test_request_options_reach_the_provider():
    agent, provider = make_agent(default='{"status": "ok"}')
    await agent.run("Return the service status as JSON.", temperature=0.2, max_tokens=300,
                    response_format={"type": "json_object"}, stop=["\n\n"])
    sent = provider.requests[0]
    assert (sent.temperature, sent.max_tokens, sent.stop) == (0.2, 300, ("\n\n",))
    assert sent.response_format == {"type": "json_object"}
