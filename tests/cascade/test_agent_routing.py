"""CascadeAgent with routers, domain configs, the complexity pre-router and speculative execution."""

import asyncio

import pytest

from cascadeflow.cascade.agent import CascadeAgent
from cascadeflow.cascade.quality import QualityConfig
from cascadeflow.errors import ConfigurationError
from cascadeflow.models import ModelConfig
from cascadeflow.routing import ComplexityRouter, DomainConfig, ModelRouter, SeverityRouter, TaskType
from cascadeflow.runtime.pipeline import Runtime
from cascadeflow.testing import ScriptedProvider

CHEAP = ModelConfig("llama-3.1-8b-instant", provider="groq")
TOP = ModelConfig("gpt-4o", provider="openai")
HAIKU = "claude-3-5-haiku-20241022"
SONNET = "claude-3-5-sonnet-20241022"
ANSWER = "Redis connection timeouts usually come from pool exhaustion: raise the pool size and add retries."
QUERY = "Why do we see Redis connection timeouts?"


def runtime_for(provider):
    return Runtime(resolve_provider=provider.resolver())


async def test_model_router_routes_by_task_type_with_its_reason():
    router = ModelRouter()
    router.register(TaskType.MEMORY_RECALL, model=HAIKU)
    router.register(TaskType.COMPLEX_REASONING, model=SONNET)
    provider = ScriptedProvider(default=ANSWER)
    agent = CascadeAgent(router=router, runtime=runtime_for(provider))
    seen = []
    agent.on_event(seen.append)
    result = await agent.run(QUERY, metadata={"task_type": "memory_recall"})
    assert result.model_used == f"anthropic/{HAIKU}"
    assert result.routing_reason == "memory recall is a lightweight task"
    assert [t.decision for t in result.tiers] == ["final"]
    assert seen[0].kind == "model_selected" and seen[0].reason == "memory recall is a lightweight task"
    await agent.run(QUERY, metadata={"task_type": TaskType.COMPLEX_REASONING.value})
    await agent.run(QUERY, metadata={"task_type": "complex_reasoning"})
    by_task = agent.get_analytics().by_task_type
    assert by_task["complex_reasoning"].calls == 2 and by_task["memory_recall"].calls == 1
    assert by_task["complex_reasoning"].describe().startswith("complex_reasoning consumed $")
    assert by_task["complex_reasoning"].describe().endswith("across 2 calls")


async def test_router_without_a_route_falls_back_to_the_agents_models_or_errors():
    provider = ScriptedProvider(default=ANSWER)
    router = ModelRouter().register(TaskType.DATA_RETRIEVAL, model="gpt-4o-mini")
    agent = CascadeAgent(models=[CHEAP, TOP], router=router, runtime=runtime_for(provider))
    result = await agent.run(QUERY)  # no task_type: the agent's own cascade
    assert result.routing_reason == "cascade of 2 tiers" and result.draft_accepted
    bare = CascadeAgent(router=router, runtime=runtime_for(provider))
    with pytest.raises(ConfigurationError, match="no models"):
        await bare.run(QUERY)


async def test_severity_router_cascade_target_is_checked_and_used():
    provider = ScriptedProvider(default=ANSWER)
    router = SeverityRouter({"P1": ["groq/llama-3.1-8b-instant", "groq/llama-3.3-70b-versatile"],
                             "P3": "groq/llama-3.1-8b-instant"})
    agent = CascadeAgent(router=router, runtime=runtime_for(provider))
    result = await agent.run(QUERY, metadata={"severity": "P1"})
    assert result.routing_reason == "severity=P1" and result.route_label == "P1"
    assert result.draft_accepted and result.baseline_estimated
    assert agent.get_analytics().by_severity["P1"].calls == 1
    misordered = SeverityRouter({"P1": ["groq/llama-3.3-70b-versatile", "groq/llama-3.1-8b-instant"]})
    agent = CascadeAgent(router=misordered, runtime=runtime_for(provider))
    with pytest.raises(ConfigurationError, match="cheap to expensive"):
        await agent.run(QUERY, metadata={"severity": "P1"})


async def test_domain_config_without_models_as_documented():
    coder = ModelConfig(name="deepseek-coder", provider="ollama", cost=0.0)
    mini = ModelConfig(name="gpt-4o-mini", provider="openai", cost=0.00015)
    big = ModelConfig(name="gpt-4o", provider="openai", cost=0.00625)
    provider = ScriptedProvider(default="Use a list comprehension: squares = [x * x for x in values].")
    agent = CascadeAgent(domain_config=DomainConfig(domains={"CODE": [coder, big], "DEFAULT": [mini, big]}),
                         runtime=runtime_for(provider))
    result = await agent.run("How do I square values in Python?\n```python\nfor x in values:\n    out.append(x*x)\n```")
    assert result.model_used == coder.id and result.route_label == "CODE"
    assert result.total_cost == 0 and result.savings_pct == 1.0


def test_domain_config_tiers_are_checked_at_construction():
    with pytest.raises(ConfigurationError, match="domain CODE"):
        CascadeAgent(domain_config=DomainConfig(domains={"CODE": [TOP, CHEAP], "DEFAULT": [CHEAP]}),
                     runtime=Runtime())
    with pytest.raises(ConfigurationError, match="either router= or domain_config="):
        CascadeAgent(router=ModelRouter(), domain_config=DomainConfig(domains={"DEFAULT": [CHEAP]}))


HARD = ("Design a multi-region Redis failover. It must keep p99 latency under 5 ms, ensure no acknowledged "
        "write is lost, handle a full region outage, and account for clock skew. Compare Sentinel and Cluster "
        "and justify the trade-offs, then derive the expected recovery time.\n"
        "1. topology\n2. failover steps\n3. Python code for the health probe\n"
        "```python\ndef probe(host: str) -> bool:\n    ...\n```")


async def test_complexity_pre_router_sends_hard_requests_straight_to_the_top_tier():
    provider = ScriptedProvider(default=lambda req: f"Answer about {req.messages[-1].text[:60]}")
    agent = CascadeAgent(models=[CHEAP, TOP], complexity_router=ComplexityRouter(0.75), runtime=runtime_for(provider))
    hard = await agent.run(HARD)
    assert hard.model_used == TOP.id and [t.decision for t in hard.tiers] == ["final"]
    assert "straight to the strongest tier" in hard.routing_reason
    assert not hard.baseline_estimated and hard.savings == 0
    easy = await agent.run("Create a short list of five common fruits for kids")
    assert [r.model for r in provider.requests] == [TOP.name, CHEAP.name]
    assert "cascade" in easy.routing_reason


class PerModel:
    """Different delays per model, so a speculative call is still in flight when the draft is judged."""

    def __init__(self, replies, delays):
        self.providers = {name: ScriptedProvider(r, delay=delays.get(name, 0.0)) for name, r in replies.items()}

    def resolver(self):
        return lambda cfg: self.providers[cfg.name]


async def test_speculative_tier_is_cancelled_when_the_draft_is_accepted():
    answer = ("Redis failover: use Sentinel with three nodes per region, replicate across regions and promote "
              "the replica on outage; the Python health probe pings each host.")
    per = PerModel({CHEAP.name: [answer], TOP.name: [answer]}, {CHEAP.name: 0.02, TOP.name: 5.0})
    agent = CascadeAgent(models=[CHEAP, TOP], speculative=True, speculate_above=0.3,
                         quality_config=QualityConfig(threshold=0.5), runtime=Runtime(resolve_provider=per.resolver()))
    result = await asyncio.wait_for(agent.run(HARD), timeout=4.0)
    assert result.draft_accepted
    assert [(t.tier, t.decision, t.speculative) for t in result.tiers] == [(0, "accepted", False),
                                                                          (1, "cancelled", True)]
    # cancelled mid-flight: tokens may have been billed, so it is charged its reserved worst case
    assert "cancelled" in result.tiers[1].reason and "outcome unknown" in result.tiers[1].error
    assert result.tiers[1].cost > 0 and result.total_cost == sum(t.cost for t in result.tiers)
    assert len(per.providers[TOP.name].requests) == 1  # it was started


async def test_speculative_answer_is_used_when_the_draft_is_rejected():
    answer = ("Redis failover: use Sentinel with three nodes per region, replicate across regions and promote "
              "the replica on outage; the Python health probe pings each host.")
    per = PerModel({CHEAP.name: [""], TOP.name: [answer]}, {CHEAP.name: 0.02})
    agent = CascadeAgent(models=[CHEAP, TOP], speculative=True, speculate_above=0.3,
                         runtime=Runtime(resolve_provider=per.resolver()))
    result = await agent.run(HARD)
    assert [(t.decision, t.speculative) for t in result.tiers] == [("rejected", False), ("final", True)]
    assert result.total_cost == sum(t.cost for t in result.tiers) and result.tiers[1].cost > 0
    assert len(per.providers[TOP.name].requests) == 1  # not called twice


async def test_speculation_is_off_for_easy_requests_and_by_default():
    per = PerModel({CHEAP.name: [ANSWER]}, {})
    agent = CascadeAgent(models=[CHEAP, TOP], speculative=True, runtime=Runtime(resolve_provider=per.resolver()))
    result = await agent.run(QUERY)
    assert [t.decision for t in result.tiers] == ["accepted"]
    assert CascadeAgent(models=[CHEAP, TOP], runtime=Runtime()).speculative is False


async def test_a_finished_speculative_answer_is_discarded_but_its_cost_counted():
    answer = ("Redis failover: use Sentinel with three nodes per region, replicate across regions and promote "
              "the replica on outage; the Python health probe pings each host.")
    per = PerModel({CHEAP.name: [answer], TOP.name: [answer]}, {CHEAP.name: 0.05})
    agent = CascadeAgent(models=[CHEAP, TOP], speculative=True, speculate_above=0.3,
                         quality_config=QualityConfig(threshold=0.5), runtime=Runtime(resolve_provider=per.resolver()))
    result = await agent.run(HARD)
    assert result.draft_accepted and result.model_used == CHEAP.id
    spec = result.tiers[1]
    assert spec.decision == "cancelled" and spec.reason == "draft accepted; speculative answer discarded"
    assert spec.cost > 0 and result.total_cost == result.tiers[0].cost + spec.cost
    assert not result.baseline_estimated and result.baseline_cost == spec.cost  # the top tier did answer


async def test_a_router_returning_garbage_is_a_clear_configuration_error():
    class Broken:
        def route(self, request):
            return "gpt-4o"

    agent = CascadeAgent(models=[CHEAP], router=Broken(), runtime=Runtime(resolve_provider=ScriptedProvider().resolver()))
    with pytest.raises(ConfigurationError, match="must return a Route"):
        await agent.run(QUERY)


async def test_a_speculative_call_refused_by_the_budget_is_retried_after_the_draft():
    from cascadeflow.budget.backends.memory import MemoryLedger
    from cascadeflow.messages import build_request
    from cascadeflow.pricing import to_micro_usd
    from cascadeflow.runtime.pipeline import CALL_OPTIONS, CallOptions, Charge
    from cascadeflow.tokens import estimate_input_tokens

    answer = ("Redis failover: use Sentinel with three nodes per region, replicate across regions and promote "
              "the replica on outage; the Python health probe pings each host.")
    per = PerModel({CHEAP.name: [""], TOP.name: [answer]}, {CHEAP.name: 0.02})
    runtime = Runtime(resolve_provider=per.resolver(), ledger=MemoryLedger())
    bound = estimate_input_tokens(build_request(HARD).messages)
    worst_top = to_micro_usd(runtime.price_book.worst_case(TOP, bound, 500))
    worst_cheap = to_micro_usd(runtime.price_book.worst_case(CHEAP, bound, 500))
    # room for the top tier's worst case, but not while the draft's reservation is also held
    limit = worst_top + worst_cheap // 2
    agent = CascadeAgent(models=[CHEAP, TOP], speculative=True, speculate_above=0.3, runtime=runtime)
    token = CALL_OPTIONS.set(CallOptions(charges=(Charge("test:speculation", limit),)))
    try:
        result = await agent.run(HARD, max_tokens=500)
    finally:
        CALL_OPTIONS.reset(token)
    assert [(t.decision, t.speculative) for t in result.tiers] == [("rejected", False), ("final", False)]
    assert len(per.providers[TOP.name].requests) == 1
    assert runtime.ledger.remaining(Charge("test:speculation", limit)) == limit - sum(
        to_micro_usd(t.cost) for t in result.tiers)


async def test_no_speculation_under_budget_pressure():
    from cascadeflow.runtime.pipeline import CALL_OPTIONS, CallOptions

    answer = ("Redis failover: use Sentinel with three nodes per region, replicate across regions and promote "
              "the replica on outage; the Python health probe pings each host.")
    per = PerModel({CHEAP.name: [answer], TOP.name: [answer]}, {CHEAP.name: 0.02})
    agent = CascadeAgent(models=[CHEAP, TOP], speculative=True, speculate_above=0.3,
                         quality_config=QualityConfig(threshold=0.4), runtime=Runtime(resolve_provider=per.resolver()))
    token = CALL_OPTIONS.set(CallOptions(raise_bar=0.05))
    try:
        result = await agent.run(HARD)
    finally:
        CALL_OPTIONS.reset(token)
    assert [t.decision for t in result.tiers] == ["accepted"]
    assert per.providers[TOP.name].requests == []
