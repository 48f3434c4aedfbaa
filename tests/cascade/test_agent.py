"""CascadeAgent against ScriptedProvider: accept, reject at each tier, errors, exhaustion, budgets, audit."""

import asyncio
from decimal import Decimal

import pytest

from cascadeflow.cascade.agent import CascadeAgent
from cascadeflow.cascade.quality import QualityConfig
from cascadeflow.errors import (
    BudgetExceeded,
    CascadeExhausted,
    ConfigurationError,
    PolicyViolation,
    RateLimitError,
    ServerError,
    UnknownModelPriceError,
)
from cascadeflow.messages import Response, ToolCall, Usage
from cascadeflow.models import ModelConfig
from cascadeflow.runtime.pipeline import CALL_OPTIONS, CallOptions, Runtime
from cascadeflow.testing import ScriptedProvider

CHEAP = ModelConfig("llama-3.1-8b-instant", provider="groq")
MID = ModelConfig("gpt-4o-mini", provider="openai")
TOP = ModelConfig("gpt-4o", provider="openai")
QUERY = "How does TCP congestion control react to packet loss?"
GOOD = ("TCP congestion control reacts to packet loss by shrinking the congestion window: on a timeout the "
        "window drops to one segment and slow start begins again, while three duplicate ACKs trigger fast "
        "retransmit and the window is halved (multiplicative decrease) before additive increase resumes.")
BAD = ""  # an empty answer: the structure signal vetoes it


class ListSink:
    def __init__(self):
        self.records = []

    def write(self, record):
        self.records.append(record)


def make_agent(script, models=(CHEAP, MID, TOP), sink=None, **kw):
    provider = ScriptedProvider({name: list(replies) for name, replies in script.items()})
    runtime = Runtime(resolve_provider=provider.resolver(), sinks=[sink] if sink else [])
    return CascadeAgent(models=list(models), runtime=runtime, **kw), provider


def tier_cost(runtime, cfg, usage):
    return runtime.price_book.cost(cfg, usage)


async def test_accepted_draft_is_returned_with_cost_baseline_and_savings():
    sink = ListSink()
    agent, provider = make_agent({CHEAP.name: [GOOD]}, sink=sink)
    result = await agent.run(QUERY, metadata={"alert_id": "INC-7", "severity": "P3"}, user_id="alice")
    assert result.content == GOOD and result.model_used == CHEAP.id and result.draft_accepted
    assert [t.decision for t in result.tiers] == ["accepted"]
    assert "structure" in result.tiers[0].signals and result.tiers[0].score is not None
    usage = result.response.usage
    assert result.total_cost_decimal == tier_cost(agent.runtime, CHEAP, usage) == result.tiers[0].cost_decimal > 0
    assert result.baseline_estimated
    assert result.baseline_cost_decimal == tier_cost(agent.runtime, TOP, Usage(usage.input_tokens, usage.output_tokens))
    assert result.savings_decimal == result.baseline_cost_decimal - result.total_cost_decimal > 0
    assert 0 < result.savings_pct < 1
    [sent] = provider.requests
    assert sent.metadata == {"alert_id": "INC-7", "severity": "P3"}
    assert sent.max_tokens == 4096  # the model limit, not a silent truncation
    [audit] = sink.records
    assert audit.action == "accept" and audit.model_selected == CHEAP.id and audit.user_id == "alice"
    assert audit.request_id == result.request_id and audit.metadata["alert_id"] == "INC-7"


async def test_rejected_draft_escalates_to_the_middle_tier():
    agent, provider = make_agent({CHEAP.name: [BAD], MID.name: [GOOD]})
    result = await agent.run(QUERY)
    assert [t.decision for t in result.tiers] == ["rejected", "accepted"]
    assert result.tiers[0].reason.startswith("rejected: structure: empty answer")
    assert result.model_used == MID.id and not result.draft_accepted
    assert [r.model for r in provider.requests] == [CHEAP.name, MID.name]
    assert result.total_cost_decimal == result.tiers[0].cost_decimal + result.tiers[1].cost_decimal
    assert result.baseline_estimated


async def test_rejections_at_every_draft_tier_end_at_the_final_tier_with_actual_baseline():
    sink = ListSink()
    agent, _ = make_agent({CHEAP.name: [BAD], MID.name: ["I'm sorry, but I can't help with that."], TOP.name: [GOOD]},
                                 sink=sink)
    result = await agent.run(QUERY)
    assert [t.decision for t in result.tiers] == ["rejected", "rejected", "final"]
    assert "refusal" in result.tiers[1].reason
    assert result.model_used == TOP.id
    assert not result.baseline_estimated and result.baseline_cost_decimal == result.tiers[2].cost_decimal
    assert result.savings_decimal < 0  # two wasted drafts: the cascade cost more than the top tier alone
    assert sink.records[0].action == "escalate" and len(sink.records[0].tiers) == 3


async def test_the_last_tier_answer_is_final_even_when_the_validator_dislikes_it():
    agent, _ = make_agent({CHEAP.name: [BAD], MID.name: [BAD], TOP.name: [BAD]})
    result = await agent.run(QUERY)
    assert result.tiers[-1].decision == "final"
    assert "validator would reject" in result.tiers[-1].reason
    assert not result.draft_accepted


@pytest.mark.parametrize("failing", [0, 1])
async def test_a_provider_error_escalates_with_reason_error(failing):
    script = {CHEAP.name: [BAD], MID.name: [BAD], TOP.name: [GOOD]}
    script[(CHEAP, MID)[failing].name] = [ServerError("upstream 503", provider="x", model="y", status_code=503)]
    agent, _ = make_agent(script)
    result = await agent.run(QUERY)
    assert result.tiers[failing].decision == "error" and result.tiers[failing].reason == "error"
    assert "ServerError" in result.tiers[failing].error
    assert result.tiers[failing].cost_decimal == 0
    assert result.model_used == TOP.id


async def test_the_last_tier_failing_raises_cascade_exhausted_with_every_attempt():
    sink = ListSink()
    agent, _ = make_agent({CHEAP.name: [BAD], MID.name: [RateLimitError("slow down")], TOP.name: [ServerError("boom")]},
                          sink=sink)
    with pytest.raises(CascadeExhausted) as info:
        await agent.run(QUERY)
    attempts = info.value.attempts
    assert [a.decision for a in attempts] == ["rejected", "error", "error"]
    assert "RateLimitError" in attempts[1].error and "ServerError" in attempts[2].error
    assert attempts[0].cost_decimal > 0  # the rejected draft was paid for
    [audit] = sink.records
    assert audit.action == "stop" and "CascadeExhausted" in audit.error and audit.cost_usd > 0
    assert agent.get_analytics().errors == 1


async def test_every_tier_failing_raises_cascade_exhausted():
    agent, _ = make_agent({m.name: [ServerError("down")] for m in (CHEAP, MID, TOP)})
    with pytest.raises(CascadeExhausted, match="last error: ServerError") as info:
        await agent.run(QUERY)
    assert [a.decision for a in info.value.attempts] == ["error"] * 3


class StopAtTier:
    def __init__(self, model_id):
        self.model_id = model_id

    def before_attempt(self, model, request, call):
        if model.id == self.model_id:
            raise PolicyViolation("model not allowed here", policy="test")
        return model, request

    def after_attempt(self, model, response, call):
        pass

    def after_failed_attempt(self, record, call):
        pass


async def test_policy_violation_propagates_instead_of_escalating():
    provider = ScriptedProvider({CHEAP.name: [BAD], MID.name: [GOOD]})
    runtime = Runtime(resolve_provider=provider.resolver(), policy=StopAtTier(MID.id))
    agent = CascadeAgent(models=[CHEAP, MID, TOP], runtime=runtime)
    with pytest.raises(PolicyViolation):
        await agent.run(QUERY)
    assert [r.model for r in provider.requests] == [CHEAP.name]


async def test_budget_exceeded_propagates_before_anything_is_sent():
    agent, provider = make_agent({CHEAP.name: [GOOD]})
    token = CALL_OPTIONS.set(CallOptions(budget_limit_micro=1))
    try:
        with pytest.raises(BudgetExceeded):
            await agent.run(QUERY)
    finally:
        CALL_OPTIONS.reset(token)
    assert provider.requests == []


async def test_budget_pressure_serves_only_the_cheapest_tier():
    agent, provider = make_agent({CHEAP.name: [BAD]})
    agent.runtime.budget_pressure = type("P", (), {"cheapest_only": True, "raise_bar": 0.0,
                                                   "reason": "day budget 95% used"})()
    result = await agent.run(QUERY)
    assert [t.decision for t in result.tiers] == ["final"]
    assert "cheapest tier only (day budget 95% used)" in result.tiers[0].reason
    assert len(provider.requests) == 1


HEDGED = "I think TCP probably shrinks its congestion window on packet loss, maybe halving it."  # score 0.3


async def test_raise_bar_from_call_options_rejects_a_draft_the_plain_bar_accepts():
    agent, _ = make_agent({CHEAP.name: [HEDGED, HEDGED], MID.name: [GOOD]},
                          quality_config=QualityConfig(threshold=0.2))
    assert (await agent.run(QUERY)).draft_accepted
    token = CALL_OPTIONS.set(CallOptions(raise_bar=0.5))
    try:
        result = await agent.run(QUERY)
    finally:
        CALL_OPTIONS.reset(token)
    assert result.tiers[0].decision == "rejected" and "< 0.70" in result.tiers[0].reason


async def test_tool_calls_are_returned_and_tools_reach_the_provider():
    tool = {"type": "function", "function": {"name": "get_status", "description": "service status",
                                             "parameters": {"type": "object", "properties": {"service": {"type": "string"}},
                                                            "required": ["service"]}}}
    call = ToolCall(id="c1", name="get_status", arguments='{"service": "payments"}')
    reply = Response(content="", model="", provider="fake", tool_calls=(call,), finish_reason="tool_calls",
                     usage=Usage(40, 12))
    agent, provider = make_agent({CHEAP.name: [reply]})
    result = await agent.run("Is the payments service healthy?", tools=[tool])
    assert result.tool_calls == (call,) and result.draft_accepted
    assert provider.requests[0].tools[0].name == "get_status"


async def test_invalid_tool_arguments_escalate():
    tool = {"name": "get_status", "parameters": {"type": "object", "properties": {"service": {"type": "string"}},
                                                 "required": ["service"]}}
    broken = Response(content="", model="", provider="fake", finish_reason="tool_calls", usage=Usage(40, 12),
                      tool_calls=(ToolCall(id="c1", name="get_status", arguments='{"svc": 1'),))
    agent, _ = make_agent({CHEAP.name: [broken], MID.name: ["The payments service is healthy: every check passes."]})
    result = await agent.run("Is the payments service healthy?", tools=[tool])
    assert result.tiers[0].decision == "rejected" and "tool_args" in result.tiers[0].reason


async def test_multi_turn_messages_reach_the_provider_unflattened():
    chat = [{"role": "system", "content": "You are an SRE assistant."},
            {"role": "user", "content": "Redis timeouts since 3am."},
            {"role": "assistant", "content": "Which service?"},
            {"role": "user", "content": QUERY}]
    agent, provider = make_agent({CHEAP.name: [GOOD]})
    await agent.run(chat)
    assert [m.role for m in provider.requests[0].messages] == ["system", "user", "assistant", "user"]


async def test_batch_keeps_order_and_bounds_concurrency():
    in_flight, peak = 0, 0

    class Counting(ScriptedProvider):
        async def complete(self, request):
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                await asyncio.sleep(0.005)
                return await super().complete(request)
            finally:
                in_flight -= 1

    provider = Counting(default=lambda req: f"{GOOD} Query: {req.messages[-1].text}")
    agent = CascadeAgent(models=[CHEAP, TOP], runtime=Runtime(resolve_provider=provider.resolver()))
    queries = [f"{QUERY} (case {i})" for i in range(9)]
    results = await agent.run_batch(queries, concurrency=3)
    assert [r.content.rsplit("(case ", 1)[1] for r in results] == [f"{i})" for i in range(9)]
    assert peak == 3
    assert agent.get_analytics().total_queries == 9


async def test_batch_items_may_carry_their_own_metadata_and_user():
    sink = ListSink()
    agent, provider = make_agent({CHEAP.name: [GOOD, GOOD]}, sink=sink)
    await agent.run_batch([{"query": QUERY, "metadata": {"severity": "P1"}, "user_id": "bob"}, QUERY],
                          metadata={"team": "sre"}, concurrency=1)
    assert [r.metadata for r in provider.requests] == [{"team": "sre", "severity": "P1"}, {"team": "sre"}]
    assert [a.user_id for a in sink.records] == ["bob", None]
    with pytest.raises(ConfigurationError, match="batch item 0"):
        await agent.run_batch([{"metadata": {}}])


async def test_batch_validates_every_query_before_calling_anything():
    agent, provider = make_agent({CHEAP.name: [GOOD]})
    with pytest.raises(ConfigurationError, match="empty"):
        await agent.run_batch([QUERY, "   "])
    assert provider.requests == []
    with pytest.raises(ConfigurationError, match="concurrency"):
        await agent.run_batch([QUERY], concurrency=0)


def test_run_sync_works_outside_an_event_loop():
    agent, _ = make_agent({CHEAP.name: [GOOD]})
    assert agent.run_sync(QUERY).content == GOOD


async def test_run_sync_is_refused_inside_a_running_loop():
    agent, _ = make_agent({CHEAP.name: [GOOD]})
    with pytest.raises(RuntimeError, match="await the async version"):
        agent.run_sync(QUERY)


def test_misordered_tiers_are_a_configuration_error_unless_allowed():
    with pytest.raises(ConfigurationError, match="cheap to expensive.*openai/gpt-4o.*allow_unordered"):
        CascadeAgent(models=[TOP, CHEAP], runtime=Runtime())
    assert CascadeAgent(models=[TOP, CHEAP], runtime=Runtime(), allow_unordered=True).models == (TOP, CHEAP)


def test_unpriceable_models_fail_at_construction():
    with pytest.raises(UnknownModelPriceError):
        CascadeAgent(models=[ModelConfig("mystery-model-x", provider="huggingface"), TOP], runtime=Runtime())


def test_declared_prices_order_the_tiers():
    a = ModelConfig("llama-3.2-3b", provider="groq", cost=0.00005)
    b = ModelConfig("gpt-4o", provider="openai", cost=0.00625)
    assert CascadeAgent(models=[a, b], runtime=Runtime()).models == (a, b)


def test_bad_configuration_is_rejected_with_a_hint():
    with pytest.raises(ConfigurationError, match="needs models"):
        CascadeAgent(runtime=Runtime())
    with pytest.raises(ConfigurationError, match="QualityConfig"):
        CascadeAgent(models=[CHEAP], quality_config={"threshold": 0.7}, runtime=Runtime())
    with pytest.raises(ConfigurationError, match="route"):
        CascadeAgent(models=[CHEAP], router=object(), runtime=Runtime())


async def test_bad_input_fails_before_any_call():
    agent, provider = make_agent({CHEAP.name: [GOOD]})
    with pytest.raises(ConfigurationError, match="max_tokens"):
        await agent.run(QUERY, max_tokens=-5)
    assert provider.requests == []


async def test_quality_config_threshold_is_applied():
    lenient, _ = make_agent({CHEAP.name: [HEDGED]}, quality_config=QualityConfig(threshold=0.05))
    strict, _ = make_agent({CHEAP.name: [HEDGED], MID.name: [GOOD]}, quality_config=QualityConfig(threshold=0.99))
    assert (await lenient.run(QUERY)).draft_accepted
    assert not (await strict.run(QUERY)).draft_accepted


async def test_decisions_are_recorded_on_the_call_trace():
    sink = ListSink()
    agent, _ = make_agent({CHEAP.name: [BAD], MID.name: [GOOD]}, sink=sink)
    result = await agent.run(QUERY)
    tiers = sink.records[0].tiers
    assert [t["tier"] for t in tiers] == [0, 1] and [t["role"] for t in tiers] == ["draft", "draft"]
    assert sum(Decimal(str(t["cost_usd"])) for t in tiers) == pytest.approx(result.total_cost_decimal)


async def test_per_complexity_thresholds_are_applied_from_the_requests_complexity():
    config = QualityConfig(threshold=0.7, thresholds_by_complexity={"simple": 0.2, "moderate": 0.9,
                                                                    "hard": 0.9, "expert": 0.9})
    agent, _ = make_agent({CHEAP.name: [HEDGED]}, quality_config=config)
    result = await agent.run("Does TCP shrink its window on loss?")  # short: simple -> bar 0.2
    assert result.draft_accepted and "score=0.30 >= 0.20" in result.tiers[0].reason


def test_result_to_dict_is_json_ready():
    import json

    agent, _ = make_agent({CHEAP.name: [BAD], MID.name: [GOOD]})
    data = json.loads(json.dumps(agent.run_sync(QUERY, metadata={"severity": "P2"}).to_dict()))
    assert [t["decision"] for t in data["tiers"]] == ["rejected", "accepted"]
    assert data["metadata"] == {"severity": "P2"} and data["total_cost"] > 0


async def test_inside_a_harness_run_every_tier_is_traced_and_limits_are_enforced():
    from cascadeflow import harness

    agent, _ = make_agent({CHEAP.name: [BAD, GOOD, GOOD], MID.name: [GOOD]})
    with harness.run(mode="observe", budget=1.0) as session:
        result = await agent.run(QUERY)
    trace = session.trace()
    assert [(r["action"], r["tier"]) for r in trace] == [("escalate", 0), ("accept", 1)]
    assert trace[0]["reason"].startswith("rejected: structure: empty answer")
    assert session.summary()["cost_total"] == float(result.total_cost_decimal)
    assert session.summary()["steps"] == 2
    with pytest.raises(BudgetExceeded), harness.run(mode="enforce", budget=0):
        await agent.run(QUERY)
    with pytest.raises(PolicyViolation), harness.run(mode="enforce", compliance="strict"):
        await agent.run(QUERY)  # strict allows only self-hosted providers; groq is refused before sending
