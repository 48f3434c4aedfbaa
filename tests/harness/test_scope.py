"""Run scopes through the real pipeline (Runtime.attempt with a scripted provider): budgets, tool caps,
observe vs enforce, nesting, decorator, propagation through tasks and threads, summary and trace."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

import cascadeflow
from cascadeflow import harness
from cascadeflow.errors import BudgetExceeded, ConfigurationError, PolicyViolation
from cascadeflow.messages import Response, ToolCall, Usage
from cascadeflow.models import ModelConfig

CHEAP = ModelConfig("gpt-4o-mini", provider="openai", input_price_per_million=1, output_price_per_million=2)
WEATHER = {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}


async def test_enforce_budget_stop_happens_before_the_provider_is_called(scripted, call):
    provider, runtime = scripted
    harness.init(mode="enforce", audit=False)
    with harness.run(budget=0.001) as session, pytest.raises(BudgetExceeded) as err:
        await call(runtime, max_tokens=1000)  # worst case 1000 x $2/M = $0.002 > $0.001
    assert provider.requests == []
    assert err.value.key == f"run:{session.run_id}"
    stops = [r for r in session.trace() if r["action"] == "stop"]
    assert len(stops) == 1 and stops[0]["applied"] is True and "does not fit the run budget" in stops[0]["reason"]
    assert session.summary()["cost_total"] == 0


async def test_observe_records_the_would_be_stop_and_sends_the_call_unchanged(scripted, call):
    provider, runtime = scripted
    harness.init(mode="observe", audit=False)
    with harness.run(budget=0.001) as session:
        await call(runtime, max_tokens=1000)
    assert len(provider.requests) == 1
    actions = [(r["action"], r["applied"]) for r in session.trace()]
    assert actions == [("stop", False), ("allow", True)]
    summary = session.summary()
    assert summary["mode"] == "observe" and summary["steps"] == 1 and summary["actions"] == {"stop": 1, "allow": 1}


async def test_run_budget_zero_stops_every_call_in_enforce_mode(scripted, call):
    provider, runtime = scripted
    harness.init(mode="enforce", audit=False)
    with harness.run(budget=0) as session, pytest.raises(BudgetExceeded):
        await call(runtime, max_tokens=10)
    assert provider.requests == [] and session.summary()["budget_remaining"] == 0


async def test_summary_adds_cost_steps_latency_and_models(scripted, call):
    _provider, runtime = scripted
    harness.init(mode="enforce", audit=False)
    with harness.run(budget=1.0, user_id="alice", name="triage") as session:
        await call(runtime, max_tokens=50)
        await call(runtime, max_tokens=50)
    s = session.summary()
    spent = sum(r.cost for r in session.trace() if r.action == "allow")
    assert s["steps"] == 2 and s["calls"] == 2 and s["models_used"] == {"openai/gpt-4o-mini": 2}
    assert s["cost_total"] == pytest.approx(spent) and s["cost_total"] > 0
    assert s["budget_max"] == 1.0 and s["budget_remaining"] == pytest.approx(1.0 - s["cost_total"], abs=1e-6)
    assert s["user_id"] == "alice" and s["name"] == "triage" and s["latency_total_ms"] >= 0
    for key in ("run_id", "mode", "tool_calls", "actions"):
        assert key in s
    record = session.trace()[0]
    for key in ("step", "timestamp", "action", "reason", "model_requested", "model_used", "applied", "cost",
                "input_tokens", "output_tokens", "latency_ms", "budget_remaining", "run_id"):
        assert record[key] is not None or key == "budget_remaining"
    assert [r["step"] for r in session.trace()] == [1, 2]


async def test_nested_scopes_apply_the_tighter_budget_and_record_in_both(scripted, call):
    _provider, runtime = scripted
    harness.init(mode="enforce", audit=False)
    with harness.run(budget=1.0) as outer:
        with harness.run(budget=0.001) as inner:
            with pytest.raises(BudgetExceeded) as err:
                await call(runtime, max_tokens=1000)
            assert err.value.key == f"run:{inner.run_id}"
            await call(runtime, max_tokens=100)  # $0.0002 worst case fits both
        assert inner.parent is outer
    assert inner.summary()["steps"] == 1 and outer.summary()["steps"] == 1
    assert outer.summary()["cost_total"] == inner.summary()["cost_total"] > 0
    assert [r.action for r in outer.trace()] == [r.action for r in inner.trace()] == ["stop", "allow"]


async def test_inner_generous_scope_cannot_escape_the_outer_budget(scripted, call):
    provider, runtime = scripted
    harness.init(mode="enforce", audit=False)
    with harness.run(budget=0.001) as outer, harness.run(budget=5.0), pytest.raises(BudgetExceeded) as err:
        await call(runtime, max_tokens=1000)
    assert err.value.key == f"run:{outer.run_id}" and provider.requests == []


async def test_ledger_reservation_enforces_the_run_budget_for_concurrent_calls(scripted, call):
    provider, runtime = scripted
    provider.delay = 0.01
    harness.init(mode="enforce", audit=False)
    # each call's worst case is $0.0002; ten of them concurrently under $0.001: the ledger admits at most 5
    with harness.run(budget=0.001) as session:
        results = await asyncio.gather(*(call(runtime, max_tokens=100) for _ in range(10)), return_exceptions=True)
    admitted = [r for r in results if isinstance(r, Response)]
    refused = [r for r in results if isinstance(r, BudgetExceeded)]
    assert len(admitted) + len(refused) == 10 and 1 <= len(admitted) <= 5
    assert session.summary()["cost_total"] <= 0.001


async def test_max_tool_calls_denies_tools_once_the_cap_is_reached(scripted, call):
    provider, runtime = scripted
    asked = Response("", "gpt-4o-mini", "fake", Usage(5, 5), (ToolCall("c1", "get_weather"),
                                                               ToolCall("c2", "get_weather")), "tool_calls")
    provider._shared.extend([asked, "done"])
    harness.init(mode="enforce", audit=False)
    with harness.run(max_tool_calls=2) as session:
        await call(runtime, tools=[WEATHER], tool_choice="auto")
        await call(runtime, tools=[WEATHER], tool_choice="auto")
    assert provider.requests[0].tools and provider.requests[0].tool_choice == "auto"
    assert provider.requests[1].tools == () and provider.requests[1].tool_choice is None
    denied = [r for r in session.trace() if r.action == "deny_tool"]
    assert len(denied) == 1 and denied[0].applied and session.summary()["tool_calls"] == 2


async def test_max_tool_calls_in_observe_mode_only_records(scripted, call):
    provider, runtime = scripted
    provider._shared.extend([Response("", "m", "fake", Usage(1, 1), (ToolCall("c1", "get_weather"),), "tool_calls")])
    harness.init(mode="observe", audit=False)
    with harness.run(max_tool_calls=1) as session:
        await call(runtime, tools=[WEATHER])
        await call(runtime, tools=[WEATHER])
    assert provider.requests[1].tools != ()
    assert [(r.action, r.applied) for r in session.trace() if r.action == "deny_tool"] == [("deny_tool", False)]


async def test_max_latency_stops_a_run_that_used_up_its_time(scripted, call):
    provider, runtime = scripted
    provider.delay = 0.02
    harness.init(mode="enforce", audit=False)
    with harness.run(max_latency_ms=1) as session:
        await call(runtime)
        with pytest.raises(PolicyViolation) as err:
            await call(runtime)
    assert err.value.policy == "max_latency_ms" and len(provider.requests) == 1
    assert session.summary()["latency_total_ms"] >= 1


def test_agent_decorator_runs_each_invocation_in_its_own_scope(scripted):
    _provider, _runtime = scripted
    harness.init(mode="enforce", audit=False)
    seen = []

    @cascadeflow.harness.agent(budget=0.10, compliance="hipaa")
    def triage(query):
        scope = harness.current_run()
        seen.append(scope)
        return scope.summary()

    first, second = triage("a"), triage("b")
    assert seen[0] is not seen[1] and first["run_id"] != second["run_id"]
    assert first["budget_max"] == 0.10 and first["compliance"] == "hipaa" and first["name"].endswith("triage")
    assert harness.current_run() is None


async def test_agent_decorator_on_async_functions_applies_the_budget(scripted, call):
    provider, runtime = scripted
    harness.init(mode="enforce", audit=False)

    @harness.agent(budget=0.0005, kpi_weights={"cost": 0.9, "quality": 0.1})
    async def triage_agent(query):
        return await call(runtime, text=query, max_tokens=1000)

    with pytest.raises(BudgetExceeded):
        await triage_agent("is the API down?")
    assert provider.requests == []


def test_agent_decorator_rejects_bad_limits_at_decoration_time():
    with pytest.raises(ConfigurationError, match="budget"):
        harness.agent(budget=-1)
    with pytest.raises(ConfigurationError, match="kpi_weights"):
        harness.agent(kpi_weights={"speed": 1})
    with pytest.raises(ConfigurationError, match="compliance preset"):
        harness.agent(compliance="sox")


async def test_scope_follows_asyncio_tasks(scripted, call):
    _provider, runtime = scripted
    harness.init(mode="enforce", audit=False)
    async with harness.run(budget=1.0) as session:
        await asyncio.gather(*(asyncio.create_task(call(runtime, max_tokens=20)) for _ in range(3)))
    assert session.summary()["steps"] == 3


def test_spawn_thread_and_context_pool_carry_the_scope():
    harness.init(mode="observe", audit=False)
    seen = {}
    with harness.run(name="outer") as session:
        t = harness.spawn_thread(lambda: seen.__setitem__("thread", harness.current_run()))
        t.join()
        with harness.ContextThreadPoolExecutor(2) as pool:
            seen["pool"] = pool.submit(harness.current_run).result()
            seen["map"] = list(pool.map(lambda _: harness.current_run(), range(2)))
        plain = threading.Thread(target=lambda: seen.__setitem__("plain", harness.current_run()))
        plain.start()
        plain.join()
        ctx = contextvars.copy_context()
        with harness.ContextThreadPoolExecutor(1) as pool:
            seen["copied"] = pool.submit(ctx.run, harness.current_run).result()
    assert seen["thread"] is session and seen["pool"] is session and seen["map"] == [session, session]
    assert seen["copied"] is session
    assert seen["plain"] is None  # a bare thread does not inherit context: that is why the helpers exist


async def test_off_mode_scope_counts_cost_but_decides_nothing(scripted, call):
    _provider, runtime = scripted
    with harness.run(budget=0.000001) as session:  # never init()ed: mode off
        await call(runtime, max_tokens=1000)
    assert session.mode == "off" and session.trace() == [] and session.summary()["steps"] == 1


async def test_concurrent_attempts_of_one_call_are_each_counted_once(scripted):
    from cascadeflow.messages import build_request
    from cascadeflow.models import ModelConfig

    _provider, runtime = scripted
    slow = ModelConfig("slow-model", provider="openai", input_price_per_million=1, output_price_per_million=2)
    fast = ModelConfig("fast-model", provider="openai", input_price_per_million=100, output_price_per_million=200)

    async def reply(request):
        await asyncio.sleep(0.02 if request.model == "slow-model" else 0)
        return Response("x " * 10, request.model, "fake", Usage(10, 10))

    async def invoke(request):
        return await reply(request)

    harness.init(mode="enforce", audit=False)
    with harness.run(budget=1.0) as session:
        ctx = runtime.new_call()
        request = build_request("hi", max_tokens=20)
        (_, slow_rec), (_, fast_rec) = await asyncio.gather(
            runtime.attempt(slow, request, ctx, tier=0, invoke=invoke),
            runtime.attempt(fast, request, ctx, tier=1, invoke=invoke))
        runtime.finish(ctx, action="allow", model_selected=fast.id, response=None)
    s = session.summary()
    assert s["models_used"] == {"openai/slow-model": 1, "openai/fast-model": 1}
    assert s["cost_total"] == pytest.approx(float(slow_rec.cost + fast_rec.cost))
    costs = {r.model_used: r.cost for r in session.trace() if r.action == "allow"}
    assert costs == {"openai/slow-model": float(slow_rec.cost), "openai/fast-model": float(fast_rec.cost)}


def test_spawn_thread_can_be_created_unstarted_and_keeps_its_context():
    harness.init(mode="observe", audit=False)
    seen = []
    with harness.run() as session:
        thread = harness.spawn_thread(lambda: seen.append(harness.current_run()), start=False, name="worker")
    thread.start()  # started after the scope closed: it still runs in the context copied at creation
    thread.join()
    assert seen == [session] and thread.name == "worker"


def test_bad_run_arguments_are_rejected_before_any_call():
    for kwargs, message in [({"budget": "lots"}, "budget"), ({"budget": float("nan")}, "budget"),
                            ({"max_tool_calls": -1}, "max_tool_calls"), ({"max_latency_ms": 0}, "max_latency_ms"),
                            ({"mode": "loud"}, "mode"), ({"models": ["mystery"]}, "cannot tell which provider")]:
        with pytest.raises(ConfigurationError, match=message):
            harness.run(**kwargs)


async def test_a_failed_attempt_that_may_have_been_billed_counts_against_the_run_at_once(scripted):
    from cascadeflow.errors import ProviderTimeoutError
    from cascadeflow.messages import build_request

    provider, runtime = scripted
    provider._shared.extend([ProviderTimeoutError("read timeout"), "fine answer"])
    harness.init(mode="enforce", audit=False)
    with harness.run(budget=1.0) as session:
        ctx = runtime.new_call(model_requested=CHEAP.id)
        with pytest.raises(ProviderTimeoutError):
            await runtime.attempt(CHEAP, build_request("hello", max_tokens=100), ctx)
        charged = ctx.attempts[0].cost  # its reserved worst case: the tokens may have been generated
        assert charged > 0
        # already counted when the next attempt of the same call (a cascade's next tier) is checked
        assert session.summary()["cost_total"] == pytest.approx(float(charged))
        response, record = await runtime.attempt(CHEAP, build_request("hello", max_tokens=100), ctx)
        runtime.finish(ctx, action="allow", model_selected=record.model, response=response)
    summary = session.summary()
    assert summary["cost_total"] == pytest.approx(float(charged + record.cost))  # each attempt counted once
    assert summary["steps"] == 2
