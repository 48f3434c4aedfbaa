"""The real anthropic SDK, instrumented, against the loopback server: messages.create (sync, async,
stream=True) and messages.stream() (sync, async)."""

from __future__ import annotations

import anthropic
import pytest

from cascadeflow import harness
from cascadeflow.errors import BudgetExceeded, PolicyViolation

MODEL = "claude-3-5-haiku-20241022"
TOOL = {"name": "lookup", "description": "find a record", "input_schema": {"type": "object", "properties": {}}}
MSGS = [{"role": "user", "content": [{"type": "text", "text": "Patient SSN 078-05-1120, summarise"}]}]


@pytest.fixture
def aan(anthropic_server):
    return anthropic.AsyncAnthropic(base_url=anthropic_server.base_url, api_key="sk-ant-test", max_retries=0)


def _create(client, **kw):
    return client.messages.create(model=MODEL, max_tokens=200, system="You are careful.", messages=MSGS,
                                  tools=[TOOL], **kw)


def _stream_helper(client):
    with client.messages.stream(model=MODEL, max_tokens=200, system="You are careful.", messages=MSGS) as stream:
        return "".join(stream.text_stream)


CALLS = {
    "create": _create,
    "create_stream": lambda c: list(_create(c, stream=True)),
    "stream_helper": _stream_helper,
}


@pytest.mark.parametrize("kind", sorted(CALLS))
def test_observe_mode_sends_byte_identical_requests(kind, an, anthropic_server):
    for _ in range(2):
        anthropic_server.enqueue(text="Summary ready", usage={"input": 40, "output": 3})
    CALLS[kind](an)  # uninstrumented
    harness.init(mode="observe", audit=False)
    # a client made after init(): a resource made before it cannot be traced to its client's host (vendor.py)
    fresh = anthropic.Anthropic(base_url=anthropic_server.base_url, api_key="sk-ant-test", max_retries=0)
    with harness.run(budget=0.000001, compliance="hipaa") as session:
        CALLS[kind](fresh)
    plain, observed = anthropic_server.requests
    assert observed.body == plain.body
    assert [(r.action, r.applied) for r in session.trace()] == [("redact", False), ("stop", False), ("allow", True)]
    allow = session.trace()[-1]
    assert (allow.input_tokens, allow.output_tokens) == (40, 3) and allow.cost > 0


async def test_async_create_stream_and_stream_helper(aan, anthropic_server):
    for text in ("plain", "streamed answer", "helper answer"):
        anthropic_server.enqueue(text=text, usage={"input": 20, "output": 2})
    harness.init(mode="enforce", audit=False)
    async with harness.run(budget=1.0) as session:
        out = await aan.messages.create(model=MODEL, max_tokens=50, messages=MSGS)
        events = [e async for e in await aan.messages.create(model=MODEL, max_tokens=50, messages=MSGS,
                                                             stream=True)]
        async with aan.messages.stream(model=MODEL, max_tokens=50, messages=MSGS) as stream:
            text = "".join([t async for t in stream.text_stream])
    assert out.content[0].text == "plain" and events and text == "helper answer"
    assert [r.output_tokens for r in session.trace() if r.action == "allow"] == [2, 2, 2]
    assert session.summary()["steps"] == 3


def test_enforce_redacts_system_and_messages_and_denies_tools(an, anthropic_server):
    anthropic_server.enqueue(text="", tool_calls=[{"name": "lookup", "arguments": {}}], usage={"input": 9, "output": 5})
    anthropic_server.enqueue(text="done", usage={"input": 9, "output": 1})
    harness.init(mode="enforce", audit=False)
    with harness.run(compliance="hipaa", max_tool_calls=1) as session:
        an.messages.create(model=MODEL, max_tokens=100, system="Reach me at doc@clinic.example", messages=MSGS,
                           tools=[TOOL], tool_choice={"type": "auto"})
        an.messages.create(model=MODEL, max_tokens=100, messages=MSGS, tools=[TOOL], tool_choice={"type": "auto"})
    first, second = (r.json for r in anthropic_server.requests)
    assert first["system"] == "Reach me at [REDACTED_EMAIL]"
    assert first["messages"][0]["content"][0]["text"] == "Patient SSN [REDACTED_SSN], summarise"
    assert "tools" not in second and "tool_choice" not in second
    assert session.summary()["tool_calls"] == 1


def test_enforce_stops_stream_helper_before_sending(an, anthropic_server):
    harness.init(mode="enforce", audit=False)
    with harness.run(budget=0.0001) as session, pytest.raises(BudgetExceeded), \
            an.messages.stream(model=MODEL, max_tokens=4000, messages=MSGS) as stream:
        list(stream.text_stream)
    assert anthropic_server.requests == []
    assert session.trace()[0].action == "stop"


def test_strict_compliance_blocks_a_cloud_vendor_with_no_cross_vendor_rewrite(an, anthropic_server):
    harness.init(mode="enforce", audit=False)
    with harness.run(compliance="strict", models=["gpt-4o-mini"]), \
            pytest.raises(PolicyViolation, match="not in allowed providers"):
        an.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert anthropic_server.requests == []


def test_positional_or_unparseable_calls_pass_through_untouched(an, anthropic_server):
    anthropic_server.enqueue(text="ok")
    harness.init(mode="observe", audit=False)
    with harness.run() as session:
        an.messages.create(model=MODEL, max_tokens=10, messages="not a list")  # we cannot read it: pass it on
    assert len(anthropic_server.requests) == 1 and session.summary()["steps"] == 0


def test_an_sdk_call_is_never_switched_to_another_vendor_even_when_allowed(an, anthropic_server):
    harness.init(mode="enforce", audit=False, allow_cross_provider=True)
    policy = {"name": "openai-only", "providers": {"allowed": ["openai"]}, "switching": {"cross_provider": True}}
    with harness.run(compliance=policy, models=["gpt-4o-mini"]) as session, \
            pytest.raises(PolicyViolation, match="no compliant candidate model of provider 'anthropic'"):
        an.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert anthropic_server.requests == [] and session.trace()[0].action == "stop"


def test_anthropic_stream_tool_use_is_counted_and_priced(an, anthropic_server):
    anthropic_server.enqueue(text="Let me check", tool_calls=[{"name": "lookup", "arguments": {"id": 7}}],
                             usage={"input": 15, "output": 9})
    harness.init(mode="observe", audit=False)
    with harness.run(max_tool_calls=5) as session:
        events = list(_create(an, stream=True))
    assert events[-1].type == "message_stop"
    allow = session.trace()[-1]
    assert (allow.input_tokens, allow.output_tokens) == (15, 9)
    assert session.summary()["tool_calls"] == 1


async def test_async_observe_sends_byte_identical_requests(aan, anthropic_server):
    for _ in range(4):
        anthropic_server.enqueue(text="same", usage={"input": 5, "output": 1})

    async def both():
        await aan.messages.create(model=MODEL, max_tokens=20, messages=MSGS, tools=[TOOL])
        async with aan.messages.stream(model=MODEL, max_tokens=20, messages=MSGS) as stream:
            await stream.get_final_message()

    await both()
    harness.init(mode="observe", audit=False)
    async with harness.run(budget=0.000001, compliance="hipaa") as session:
        await both()
    bodies = [r.body for r in anthropic_server.requests]
    assert bodies[:2] == bodies[2:] and session.summary()["steps"] == 2
