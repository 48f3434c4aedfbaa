"""The anthropic SDK's `messages.with_streaming_response.create` (a lazily read response) and the async
`with_raw_response.create`, instrumented, against the loopback server: the caller's call works as without
cascadeflow, nothing is read before the caller reads, and the call is settled and recorded once from what
the caller read."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest
from pydantic import BaseModel

from cascadeflow import harness
from cascadeflow.errors import BudgetExceeded

MODEL = "claude-3-5-haiku-20241022"
TOOL = {"name": "lookup", "description": "find a record", "input_schema": {"type": "object", "properties": {}}}
MSGS = [{"role": "user", "content": [{"type": "text", "text": "Patient SSN 078-05-1120, summarise"}]}]
CALL = {"model": MODEL, "max_tokens": 200, "system": "You are careful.", "messages": MSGS, "tools": [TOOL]}
ANSWER = "Summary ready, looking it up"
LOOKUP = [{"name": "lookup", "arguments": {"id": 7}}]
USAGE = {"input": 31, "output": 9}
COST = (31 * 0.8 + 9 * 4) / 1e6  # claude-3-5-haiku list price per million tokens


def _client(server: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.base_url, api_key="sk-ant-test", max_retries=0)


def _aclient(server: Any) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=server.base_url, api_key="sk-ant-test", max_retries=0)


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", warnings=False)
    if isinstance(value, bytes):
        return value.decode()
    return value


# (extra call kwargs, how the caller reads the body)
STREAMED = {
    "message": ({}, "parse"),
    "message_json": ({}, "json"),
    "message_text": ({}, "text"),
    "message_bytes": ({}, "iter_bytes"),
    "stream": ({"stream": True}, "parse"),
    "stream_read": ({"stream": True}, "read"),
    "stream_lines": ({"stream": True}, "iter_lines"),
    "stream_text": ({"stream": True}, "iter_text"),
}


def _unread(raw: Any) -> bool:
    """Nothing of the body was read yet (and nothing recorded in the run)."""
    run = harness.current_run()
    return raw.http_response.num_bytes_downloaded == 0 and (run is None or run.summary()["steps"] == 0)


def _streamed(client: Any, kind: str) -> Any:
    extra, how = STREAMED[kind]
    with client.messages.with_streaming_response.create(**CALL, **extra) as raw:
        assert _unread(raw)
        if how == "parse":
            parsed = raw.parse()
            return [_plain(event) for event in parsed] if extra else _plain(parsed)
        if how == "iter_bytes":
            return "".join(b.decode() for b in raw.iter_bytes())
        if how.startswith("iter_"):
            return "\n".join(getattr(raw, how)())
        return _plain(getattr(raw, how)())


async def _astreamed(client: Any, kind: str) -> Any:
    extra, how = STREAMED[kind]
    async with client.messages.with_streaming_response.create(**CALL, **extra) as raw:
        assert _unread(raw)
        if how == "parse":
            parsed = await raw.parse()
            return [_plain(event) async for event in parsed] if extra else _plain(parsed)
        if how == "iter_bytes":
            return "".join([b.decode() async for b in raw.iter_bytes()])
        if how.startswith("iter_"):
            return "\n".join([piece async for piece in getattr(raw, how)()])
        return _plain(await getattr(raw, how)())


def _check_recorded_once(session: Any, audit_path: Any, mode: str) -> None:
    allow = [r for r in session.trace() if r.action == "allow"]
    assert len(allow) == 1
    assert (allow[0].model_used, allow[0].input_tokens, allow[0].output_tokens) == (f"anthropic/{MODEL}", 31, 9)
    summary = session.summary()
    assert summary["steps"] == 1 and summary["tool_calls"] == 1 and summary["cost_total"] == pytest.approx(COST)
    ledger = harness.default_runtime().ledger.state(f"run:{session.run_id}")
    assert ledger.reserved == 0
    audit = [json.loads(line) for line in audit_path.read_text().splitlines()]
    assert len(audit) == 1 and audit[0]["mode"] == mode and audit[0]["run_id"] == session.run_id
    assert audit[0]["cost_usd"] == pytest.approx(COST)


@pytest.mark.parametrize("kind", sorted(STREAMED))
def test_streaming_response_observe_same_bytes_same_body_recorded_once(kind, anthropic_server, audit_path):
    for _ in range(2):
        anthropic_server.enqueue(text=ANSWER, tool_calls=LOOKUP, usage=USAGE)
    plain = _streamed(_client(anthropic_server), kind)
    harness.init(mode="observe", audit=str(audit_path))
    with harness.run(budget=0.000001, compliance="hipaa") as session:
        observed = _streamed(_client(anthropic_server), kind)
    before, after = anthropic_server.requests
    assert after.body == before.body
    assert observed == plain
    _check_recorded_once(session, audit_path, "observe")


@pytest.mark.parametrize("kind", sorted(STREAMED))
async def test_async_streaming_response_observe_same_bytes_same_body_recorded_once(
        kind, anthropic_server, audit_path):
    for _ in range(2):
        anthropic_server.enqueue(text=ANSWER, tool_calls=LOOKUP, usage=USAGE)
    plain = await _astreamed(_aclient(anthropic_server), kind)
    harness.init(mode="observe", audit=str(audit_path))
    async with harness.run(budget=0.000001, compliance="hipaa") as session:
        observed = await _astreamed(_aclient(anthropic_server), kind)
    before, after = anthropic_server.requests
    assert after.body == before.body
    assert observed == plain
    _check_recorded_once(session, audit_path, "observe")


@pytest.mark.parametrize("kind", ["message", "stream"])
def test_streaming_response_enforce_applies_the_policy_and_records_once(kind, anthropic_server, audit_path):
    anthropic_server.enqueue(text=ANSWER, tool_calls=LOOKUP, usage=USAGE)
    harness.init(mode="enforce", audit=str(audit_path))
    with harness.run(budget=1.0, compliance="hipaa") as session:
        out = _streamed(_client(anthropic_server), kind)
    assert "078-05-1120" not in anthropic_server.requests[0].body.decode()
    text = (out["content"][0]["text"] if kind == "message"
            else "".join(e["delta"].get("text", "") for e in out if e["type"] == "content_block_delta"))
    assert text == ANSWER
    _check_recorded_once(session, audit_path, "enforce")


@pytest.mark.parametrize("kind", ["message", "stream"])
async def test_async_streaming_response_enforce_applies_the_policy_and_records_once(
        kind, anthropic_server, audit_path):
    anthropic_server.enqueue(text=ANSWER, tool_calls=LOOKUP, usage=USAGE)
    harness.init(mode="enforce", audit=str(audit_path))
    async with harness.run(budget=1.0, compliance="hipaa") as session:
        await _astreamed(_aclient(anthropic_server), kind)
    assert "078-05-1120" not in anthropic_server.requests[0].body.decode()
    _check_recorded_once(session, audit_path, "enforce")


@pytest.mark.parametrize("kind", ["message", "stream"])
def test_streaming_response_enforce_stops_before_the_request_leaves(kind, anthropic_server):
    harness.init(mode="enforce", audit=False)
    with harness.run(budget=0) as session, pytest.raises(BudgetExceeded):
        _streamed(_client(anthropic_server), kind)
    assert anthropic_server.requests == [] and [r.action for r in session.trace()] == ["stop"]


@pytest.mark.parametrize("kind", ["message", "stream"])
async def test_async_streaming_response_enforce_stops_before_the_request_leaves(kind, anthropic_server):
    harness.init(mode="enforce", audit=False)
    async with harness.run(budget=0) as session:
        with pytest.raises(BudgetExceeded):
            await _astreamed(_aclient(anthropic_server), kind)
    assert anthropic_server.requests == [] and [r.action for r in session.trace()] == ["stop"]


@pytest.mark.parametrize("stream", [False, True])
def test_streaming_response_closed_unread_settles_once_at_exit(stream, anthropic_server, audit_path):
    anthropic_server.enqueue(text=ANSWER, usage=USAGE)
    harness.init(mode="enforce", audit=str(audit_path))
    with harness.run(budget=1.0) as session:
        with _client(anthropic_server).messages.with_streaming_response.create(**CALL, stream=stream) as raw:
            assert raw.http_response.status_code == 200 and _unread(raw)
        ledger = harness.default_runtime().ledger.state(f"run:{session.run_id}")
        assert ledger.reserved == 0 and session.summary()["steps"] == 1
    step = session.trace()[-1]  # nothing read: priced from an estimate of the input, no output
    assert step.action == "allow" and step.cost > 0 and step.output_tokens == 0
    assert len(audit_path.read_text().splitlines()) == 1


async def test_async_streaming_response_stream_left_early_settles_at_exit_from_what_was_read(
        anthropic_server, audit_path):
    anthropic_server.enqueue(text=ANSWER, usage=USAGE)
    harness.init(mode="enforce", audit=str(audit_path))
    async with harness.run(budget=1.0) as session:
        async with _aclient(anthropic_server).messages.with_streaming_response.create(**CALL, stream=True) as raw:
            async for line in raw.iter_lines():
                if "text_delta" in line:
                    break  # the first word of the answer has been read
        ledger = harness.default_runtime().ledger.state(f"run:{session.run_id}")
        assert ledger.reserved == 0 and session.summary()["steps"] == 1
    step = session.trace()[-1]  # no message_delta read: input from message_start, output estimated
    assert step.action == "allow" and step.input_tokens >= 31 and step.output_tokens >= 1
    assert len(audit_path.read_text().splitlines()) == 1


@pytest.mark.parametrize("stream", [False, True])
async def test_async_raw_response_still_works_and_is_recorded_once(stream, anthropic_server, audit_path):
    for _ in range(2):
        anthropic_server.enqueue(text=ANSWER, tool_calls=LOOKUP, usage=USAGE)

    async def call(client: Any) -> Any:
        raw = await client.messages.with_raw_response.create(**CALL, stream=stream)
        assert raw.http_response.status_code == 200
        parsed = await raw.parse()  # the async SDK's raw response parses in a coroutine
        return [_plain(event) async for event in parsed] if stream else _plain(parsed)

    plain = await call(_aclient(anthropic_server))
    harness.init(mode="observe", audit=str(audit_path))
    async with harness.run() as session:
        observed = await call(_aclient(anthropic_server))
    assert observed == plain
    assert anthropic_server.requests[1].body == anthropic_server.requests[0].body
    _check_recorded_once(session, audit_path, "observe")
