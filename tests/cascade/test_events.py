"""Cascade events: callbacks, async iterators (same and other threads), one verbose line per decision."""

import asyncio
import re
import threading

from cascadeflow.cascade import events as ev
from cascadeflow.cascade.agent import CascadeAgent
from cascadeflow.cascade.events import CascadeEvent, EventBus, format_event
from cascadeflow.errors import ServerError
from cascadeflow.models import ModelConfig
from cascadeflow.runtime.pipeline import Runtime
from cascadeflow.testing import ScriptedProvider

CHEAP = ModelConfig("llama-3.1-8b-instant", provider="groq")
TOP = ModelConfig("llama-3.3-70b-versatile", provider="groq")
QUERY = "Why is the search index stale?"
GOOD = "The search index is stale because the nightly reindex job failed; force a refresh of the index."
VERBOSE_LINE = re.compile(r"^\[CASCADEFLOW\] draft accepted → llama-3\.1-8b-instant \| Tokens: \d+ \| "
                       r"Cost: \$\d+\.\d{6} \| Latency: \d+\.\d{2}s$")


def make_agent(script, **kw):
    provider = ScriptedProvider(script)
    return CascadeAgent(models=[CHEAP, TOP], runtime=Runtime(resolve_provider=provider.resolver()), **kw)


async def test_verbose_prints_one_line_per_decision_in_the_documented_style(capsys):
    agent = make_agent({CHEAP.name: [GOOD]}, verbose=True)
    result = await agent.run(QUERY)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "[CASCADEFLOW] cascade of 2 tiers → llama-3.1-8b-instant → llama-3.3-70b-versatile"
    assert VERBOSE_LINE.match(lines[1]), lines[1]
    assert f"Tokens: {result.usage.total_tokens} " in lines[1]
    assert f"Cost: ${float(result.total_cost):.6f}" in lines[1]
    assert lines[2].startswith("[CASCADEFLOW] completed → llama-3.1-8b-instant") and "Saved: " in lines[2]
    assert len(lines) == 3


async def test_verbose_escalation_and_error_lines(capsys):
    agent = make_agent({CHEAP.name: [ServerError("upstream 503")], TOP.name: [GOOD]}, verbose=True)
    await agent.run(QUERY)
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("[CASCADEFLOW] error ← llama-3.1-8b-instant: ServerError: upstream 503")
    assert out[2] == "[CASCADEFLOW] escalated → llama-3.3-70b-versatile (error)"
    assert out[3].startswith("[CASCADEFLOW] completed → llama-3.3-70b-versatile")


async def test_quiet_agent_prints_nothing(capsys):
    await make_agent({CHEAP.name: [GOOD]}).run(QUERY)
    assert capsys.readouterr().out == ""


async def test_callbacks_receive_decisions_with_reasons_and_can_unsubscribe():
    agent = make_agent({CHEAP.name: ["", GOOD], TOP.name: [GOOD]})
    seen: list[CascadeEvent] = []
    unsubscribe = agent.on_event(seen.append)
    result = await agent.run(QUERY)
    assert [e.kind for e in seen] == [ev.MODEL_SELECTED, ev.DRAFT_REJECTED, ev.ESCALATED, ev.COMPLETED]
    rejected = seen[1]
    assert rejected.reason.startswith("rejected: structure: empty answer") and rejected.tier == 0
    assert rejected.model == CHEAP.id and rejected.request_id == result.request_id
    assert seen[-1].data["result"] is result
    unsubscribe()
    await agent.run(QUERY)
    assert len(seen) == 4


async def test_a_failing_callback_does_not_break_the_run():
    agent = make_agent({CHEAP.name: [GOOD]})
    agent.on_event(lambda e: 1 / 0)
    assert (await agent.run(QUERY)).content == GOOD


async def test_async_iterator_yields_events_of_later_runs():
    agent = make_agent({CHEAP.name: [GOOD, GOOD]})
    received: list[str] = []
    ready = asyncio.Event()

    async def consume():
        stream = agent.events()
        ready.set()
        async for event in stream:
            received.append(event.kind)
            if event.kind == ev.COMPLETED and received.count(ev.COMPLETED) == 2:
                break

    consumer = asyncio.ensure_future(consume())
    await asyncio.sleep(0)  # let the consumer subscribe
    await ready.wait()
    await agent.run(QUERY)
    await agent.run(QUERY)
    await asyncio.wait_for(consumer, 2)
    assert received == [ev.MODEL_SELECTED, ev.DRAFT_ACCEPTED, ev.COMPLETED] * 2


def test_events_cross_threads_to_an_iterator_on_another_loop():
    bus = EventBus()
    got: list[str] = []
    subscribed = threading.Event()

    async def consume():
        gen = bus.events()
        first = asyncio.ensure_future(gen.__anext__())
        await asyncio.sleep(0)
        subscribed.set()
        got.append((await first).kind)
        async for event in gen:
            got.append(event.kind)

    thread = threading.Thread(target=lambda: asyncio.run(consume()))
    thread.start()
    assert subscribed.wait(2)
    bus.emit(CascadeEvent(kind=ev.MODEL_SELECTED, request_id="r1"))
    bus.emit(CascadeEvent(kind=ev.COMPLETED, request_id="r1"))
    bus.close()
    thread.join(2)
    assert got == [ev.MODEL_SELECTED, ev.COMPLETED]


def test_format_event_ignores_stream_text():
    assert format_event(CascadeEvent(kind=ev.TEXT, request_id="r", data={"text": "hi"})) is None
    line = format_event(CascadeEvent(kind=ev.DRAFT_REJECTED, request_id="r", reason="rejected: off-topic",
                                     model="groq/x",
                                     data={"model_name": "x", "tokens": 10, "cost": 0.00001, "latency_ms": 250}))
    assert line == "[CASCADEFLOW] draft rejected (rejected: off-topic) ← x | Tokens: 10 | Cost: $0.000010 | Latency: 0.25s"


async def test_verbose_routing_line_carries_the_routers_reason(capsys):
    from cascadeflow.routing import SeverityRouter

    provider = ScriptedProvider(default=GOOD)
    router = SeverityRouter({"P1": "groq/llama-3.3-70b-versatile", "P3": "groq/llama-3.1-8b-instant"})
    agent = CascadeAgent(router=router, runtime=Runtime(resolve_provider=provider.resolver()), verbose=True)
    await agent.run(QUERY, metadata={"severity": "P1"})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "[CASCADEFLOW] severity=P1 → llama-3.3-70b-versatile"
    assert lines[1].startswith("[CASCADEFLOW] completed → llama-3.3-70b-versatile | Tokens: ")


async def test_a_closed_bus_ends_open_iterators():
    bus = EventBus()
    got = []

    async def consume():
        async for event in bus.events():
            got.append(event.kind)

    task = asyncio.ensure_future(consume())
    await asyncio.sleep(0)
    bus.emit(CascadeEvent(kind=ev.ESCALATED, request_id="r"))
    bus.close()
    await asyncio.wait_for(task, 1)
    assert got == [ev.ESCALATED]
    assert not bus.active  # the iterator unsubscribed itself


def test_every_decision_kind_has_a_line_and_stream_kinds_have_none():
    data = {"model_name": "m", "tokens": 1, "cost": 0, "latency_ms": 0, "target": "m → n", "total_cost": 0,
            "savings_pct": 0.5}
    for kind in (ev.MODEL_SELECTED, ev.DRAFT_ACCEPTED, ev.DRAFT_REJECTED, ev.ESCALATED, ev.ERROR, ev.COMPLETED):
        event = CascadeEvent(kind=kind, request_id="r", reason="why", data=data)
        assert format_event(event).startswith("[CASCADEFLOW] ")
    for kind in (ev.TEXT, ev.DRAFT_TEXT, ev.DRAFT_PENDING, ev.REPLACED):
        assert format_event(CascadeEvent(kind=kind, request_id="r", data=data)) is None
    completed = format_event(CascadeEvent(kind=ev.COMPLETED, request_id="r", reason="accept", data=data))
    assert completed.endswith("| Latency: 0.00s | Saved: 50.0%")


async def test_events_carry_the_tier_and_model_of_each_step_of_a_three_tier_escalation():
    mid = ModelConfig("gpt-4o-mini", provider="openai")
    provider = ScriptedProvider({CHEAP.name: [""], mid.name: ["I'm sorry, but I can't help with that."],
                                 "gpt-4o": [GOOD]})
    agent = CascadeAgent(models=[CHEAP, mid, ModelConfig("gpt-4o", provider="openai")],
                         runtime=Runtime(resolve_provider=provider.resolver()))
    seen = []
    agent.on_event(seen.append)
    await agent.run(QUERY)
    steps = [(e.kind, e.tier, e.model) for e in seen if e.kind != ev.COMPLETED]
    assert steps == [(ev.MODEL_SELECTED, 0, CHEAP.id), (ev.DRAFT_REJECTED, 0, CHEAP.id),
                     (ev.ESCALATED, 1, mid.id), (ev.DRAFT_REJECTED, 1, mid.id),
                     (ev.ESCALATED, 2, "openai/gpt-4o")]
    assert seen[-1].model == "openai/gpt-4o"
