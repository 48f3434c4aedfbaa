"""The openai SDK's helpers that do not return what `create` returns, instrumented, against the loopback
server: `chat.completions.parse` / `responses.parse` (structured output, posted without `create`),
`chat.completions.stream()` / `responses.stream()` (stream managers) and `with_streaming_response.create`
(a lazily read response). Each is recorded once, observe sends the same bytes and the caller gets the same
objects as without cascadeflow, enforce stops a call before the request leaves."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from cascadeflow import harness
from cascadeflow.errors import BudgetExceeded

MSGS = [{"role": "developer", "content": "Answer in JSON."},
        {"role": "user", "content": "My mail is jo@example.com. Weather in Oslo?"}]
ANSWER = '{"city": "Oslo", "sky": "sunny"}'
USAGE = {"input": 31, "output": 9}
COST = (31 * 0.15 + 9 * 0.60) / 1e6  # gpt-4o-mini list price per million tokens
VOLATILE = {"created", "created_at"}  # the loopback stamps the wall clock


class Weather(BaseModel):
    city: str
    sky: str


def _client(server: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)


def _aclient(server: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)


def _plain(value: Any) -> Any:
    """What the caller got, comparable across calls: SDK objects as data, wall-clock stamps left out."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", warnings=False)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def chat_parse(c):
    return c.chat.completions.parse(model="gpt-4o-mini", messages=MSGS, response_format=Weather)


def responses_parse(c):
    return c.responses.parse(model="gpt-4o-mini", input="Weather in Oslo?", text_format=Weather)


def chat_stream_helper(c, **kw):
    kw.setdefault("stream_options", {"include_usage": True})  # else observe mode records an estimate
    with c.chat.completions.stream(model="gpt-4o-mini", messages=MSGS, response_format=Weather, **kw) as stream:
        events = [event for event in stream]
        return events, stream.get_final_completion()


def responses_stream_helper(c):
    with c.responses.stream(model="gpt-4o-mini", input="Weather in Oslo?", text_format=Weather) as stream:
        events = [event for event in stream]
        return events, stream.get_final_response()


async def achat_parse(c):
    return await c.chat.completions.parse(model="gpt-4o-mini", messages=MSGS, response_format=Weather)


async def aresponses_parse(c):
    return await c.responses.parse(model="gpt-4o-mini", input="Weather in Oslo?", text_format=Weather)


async def achat_stream_helper(c):
    async with c.chat.completions.stream(model="gpt-4o-mini", messages=MSGS, response_format=Weather,
                                         stream_options={"include_usage": True}) as stream:
        events = [event async for event in stream]
        return events, await stream.get_final_completion()


async def aresponses_stream_helper(c):
    async with c.responses.stream(model="gpt-4o-mini", input="Weather in Oslo?", text_format=Weather) as stream:
        events = [event async for event in stream]
        return events, await stream.get_final_response()


SYNC = {f.__name__: f for f in (chat_parse, responses_parse, chat_stream_helper, responses_stream_helper)}
ASYNC = {f.__name__: f for f in (achat_parse, aresponses_parse, achat_stream_helper, aresponses_stream_helper)}


def _check_recorded_once(session: Any, audit_path: Any, mode: str) -> None:
    allow = [r for r in session.trace() if r.action == "allow"]
    assert len(allow) == 1
    assert (allow[0].model_used, allow[0].input_tokens, allow[0].output_tokens) == ("openai/gpt-4o-mini", 31, 9)
    assert session.summary()["steps"] == 1 and session.summary()["cost_total"] == pytest.approx(COST)
    audit = [json.loads(line) for line in audit_path.read_text().splitlines()]
    assert len(audit) == 1 and audit[0]["mode"] == mode and audit[0]["run_id"] == session.run_id
    assert audit[0]["cost_usd"] == pytest.approx(COST)


@pytest.mark.parametrize("kind", sorted(SYNC))
def test_observe_sends_the_same_bytes_returns_the_same_objects_and_records_once(kind, openai_server, audit_path):
    openai_server.enqueue(text=ANSWER, usage=USAGE)
    openai_server.enqueue(text=ANSWER, usage=USAGE)
    plain = SYNC[kind](_client(openai_server))
    harness.init(mode="observe", audit=str(audit_path))
    with harness.run(budget=0.000001, compliance="gdpr") as session:
        observed = SYNC[kind](_client(openai_server))
    before, after = openai_server.requests
    assert after.body == before.body and after.headers.get("x-stainless-helper-method") == \
        before.headers.get("x-stainless-helper-method")
    assert _plain(observed) == _plain(plain)
    _check_recorded_once(session, audit_path, "observe")


@pytest.mark.parametrize("kind", sorted(ASYNC))
async def test_async_observe_sends_the_same_bytes_returns_the_same_objects_and_records_once(
        kind, openai_server, audit_path):
    openai_server.enqueue(text=ANSWER, usage=USAGE)
    openai_server.enqueue(text=ANSWER, usage=USAGE)
    plain = await ASYNC[kind](_aclient(openai_server))
    harness.init(mode="observe", audit=str(audit_path))
    async with harness.run(budget=0.000001, compliance="gdpr") as session:
        observed = await ASYNC[kind](_aclient(openai_server))
    before, after = openai_server.requests
    assert after.body == before.body
    assert _plain(observed) == _plain(plain)
    _check_recorded_once(session, audit_path, "observe")


@pytest.mark.parametrize("kind", sorted(SYNC))
def test_enforce_stops_the_helper_before_the_request_leaves(kind, openai_server):
    harness.init(mode="enforce", audit=False)
    with harness.run(budget=0) as session, pytest.raises(BudgetExceeded):
        SYNC[kind](_client(openai_server))
    assert openai_server.requests == []
    assert [r.action for r in session.trace()] == ["stop"]


@pytest.mark.parametrize("kind", sorted(ASYNC))
async def test_async_enforce_stops_the_helper_before_the_request_leaves(kind, openai_server):
    harness.init(mode="enforce", audit=False)
    async with harness.run(budget=0) as session:
        with pytest.raises(BudgetExceeded):
            await ASYNC[kind](_aclient(openai_server))
    assert openai_server.requests == []
    assert [r.action for r in session.trace()] == ["stop"]


@pytest.mark.parametrize("kind", sorted(SYNC))
def test_enforce_applies_the_policy_to_the_helper_and_the_caller_still_gets_parsed_output(
        kind, openai_server, audit_path):
    openai_server.enqueue(text=ANSWER, usage=USAGE)
    harness.init(mode="enforce", audit=str(audit_path))
    with harness.run(budget=1.0, compliance="gdpr") as session:
        out = SYNC[kind](_client(openai_server))
    final = out[1] if isinstance(out, tuple) else out
    parsed = final.choices[0].message.parsed if hasattr(final, "choices") else final.output_parsed
    assert parsed == Weather(city="Oslo", sky="sunny")
    sent = openai_server.requests[0].json
    assert sent.get("max_completion_tokens", sent.get("max_output_tokens")) == 4096
    if "messages" in sent:
        assert sent["messages"][1]["content"] == "My mail is [REDACTED_EMAIL]. Weather in Oslo?"
    _check_recorded_once(session, audit_path, "enforce")


def test_enforce_stream_helper_hides_the_usage_chunk_it_asked_for(openai_server):
    openai_server.enqueue(text=ANSWER, usage=USAGE)
    openai_server.enqueue(text=ANSWER, usage=USAGE)
    plain_events, plain_final = chat_stream_helper(_client(openai_server), stream_options=openai.omit)
    harness.init(mode="enforce", audit=False)
    with harness.run(budget=1.0) as session:
        events, final = chat_stream_helper(_client(openai_server), stream_options=openai.omit)
    assert openai_server.requests[1].json["stream_options"] == {"include_usage": True}
    assert [e.type for e in events] == [e.type for e in plain_events]
    assert final.usage is None and plain_final.usage is None
    assert session.trace()[-1].output_tokens == 9


@pytest.mark.parametrize("helper", ["chat", "responses"])
def test_leaving_a_stream_helper_early_settles_at_exit(helper, openai_server, audit_path):
    openai_server.enqueue(text="one two three four five six", usage=USAGE)
    harness.init(mode="enforce", audit=str(audit_path))
    client = _client(openai_server)
    with harness.run(budget=1.0) as session:
        manager = (client.chat.completions.stream(model="gpt-4o-mini", messages=MSGS) if helper == "chat"
                   else client.responses.stream(model="gpt-4o-mini", input="hi"))
        with manager as stream:
            first = next(iter(stream))
        assert type(first).__module__.startswith("openai.")
        ledger = harness.default_runtime().ledger.state(f"run:{session.run_id}")
        assert ledger.reserved == 0 and session.summary()["steps"] == 1  # settled at exit, not at gc
        assert len(audit_path.read_text().splitlines()) == 1
        del stream, manager, first


# with_streaming_response.create: (call kwargs, how the caller reads the body) -> what it got
STREAMED = {
    "chat": ({"model": "gpt-4o-mini", "messages": MSGS}, "parse"),
    "chat_json": ({"model": "gpt-4o-mini", "messages": MSGS}, "json"),
    "chat_stream": ({"model": "gpt-4o-mini", "messages": MSGS, "stream": True,
                     "stream_options": {"include_usage": True}}, "parse"),
    "chat_stream_lines": ({"model": "gpt-4o-mini", "messages": MSGS, "stream": True,
                           "stream_options": {"include_usage": True}}, "iter_lines"),
    "responses": ({"model": "gpt-4o-mini", "input": "Weather in Oslo?"}, "parse"),
    "responses_bytes": ({"model": "gpt-4o-mini", "input": "Weather in Oslo?"}, "iter_bytes"),
    "responses_stream": ({"model": "gpt-4o-mini", "input": "Weather in Oslo?", "stream": True}, "parse"),
    "responses_stream_text": ({"model": "gpt-4o-mini", "input": "Weather in Oslo?", "stream": True}, "iter_text"),
}


def _streamed(client: Any, kind: str) -> Any:
    kwargs, how = STREAMED[kind]
    resource = client.chat.completions if "messages" in kwargs else client.responses
    with resource.with_streaming_response.create(**kwargs) as raw:
        if kind == "chat":
            assert harness.current_run() is None or harness.current_run().summary()["steps"] == 0  # not read yet
        if how == "parse":
            parsed = raw.parse()
            return [_plain(event) for event in parsed] if kwargs.get("stream") else _plain(parsed)
        if how == "json":
            return _plain(raw.json())
        return "".join(getattr(raw, how)() if how != "iter_bytes" else (b.decode() for b in raw.iter_bytes()))


async def _astreamed(client: Any, kind: str) -> Any:
    kwargs, how = STREAMED[kind]
    resource = client.chat.completions if "messages" in kwargs else client.responses
    async with resource.with_streaming_response.create(**kwargs) as raw:
        if how == "parse":
            parsed = await raw.parse()
            return [_plain(event) async for event in parsed] if kwargs.get("stream") else _plain(parsed)
        if how == "json":
            return _plain(await raw.json())
        if how == "iter_bytes":
            return "".join([b.decode() async for b in raw.iter_bytes()])
        return "".join([piece async for piece in getattr(raw, how)()])


def _unstamped(text: Any) -> Any:
    """Raw bodies compared without the loopback's wall-clock stamps."""
    import re

    return re.sub(r'"created(_at)?": ?\d+', '"created": 0', text) if isinstance(text, str) else text


@pytest.mark.parametrize("kind", sorted(STREAMED))
def test_streaming_response_observe_same_bytes_same_body_recorded_once(kind, openai_server, audit_path):
    openai_server.enqueue(text=ANSWER, usage=USAGE)
    openai_server.enqueue(text=ANSWER, usage=USAGE)
    plain = _streamed(_client(openai_server), kind)
    harness.init(mode="observe", audit=str(audit_path))
    with harness.run(budget=0.000001, compliance="gdpr") as session:
        observed = _streamed(_client(openai_server), kind)
    before, after = openai_server.requests
    assert after.body == before.body
    assert _unstamped(observed) == _unstamped(plain)
    _check_recorded_once(session, audit_path, "observe")


@pytest.mark.parametrize("kind", sorted(STREAMED))
async def test_async_streaming_response_observe_same_bytes_same_body_recorded_once(kind, openai_server, audit_path):
    openai_server.enqueue(text=ANSWER, usage=USAGE)
    openai_server.enqueue(text=ANSWER, usage=USAGE)
    plain = await _astreamed(_aclient(openai_server), kind)
    harness.init(mode="observe", audit=str(audit_path))
    async with harness.run(budget=0.000001, compliance="gdpr") as session:
        observed = await _astreamed(_aclient(openai_server), kind)
    before, after = openai_server.requests
    assert after.body == before.body
    assert _unstamped(observed) == _unstamped(plain)
    _check_recorded_once(session, audit_path, "observe")


@pytest.mark.parametrize("kind", ["chat", "chat_stream", "responses", "responses_stream"])
def test_streaming_response_enforce_stops_before_the_request_leaves(kind, openai_server):
    harness.init(mode="enforce", audit=False)
    with harness.run(budget=0) as session, pytest.raises(BudgetExceeded):
        _streamed(_client(openai_server), kind)
    assert openai_server.requests == [] and [r.action for r in session.trace()] == ["stop"]


async def test_async_streaming_response_enforce_stops_before_the_request_leaves(openai_server):
    harness.init(mode="enforce", audit=False)
    async with harness.run(budget=0) as session:
        with pytest.raises(BudgetExceeded):
            await _astreamed(_aclient(openai_server), "chat")
    assert openai_server.requests == [] and [r.action for r in session.trace()] == ["stop"]


def test_streaming_response_enforce_raw_stream_gets_no_extra_usage_chunk(openai_server):
    kwargs = {"model": "gpt-4o-mini", "messages": MSGS, "stream": True, "max_completion_tokens": 100}
    openai_server.enqueue(text=ANSWER, usage=USAGE)
    openai_server.enqueue(text=ANSWER, usage=USAGE)
    with _client(openai_server).chat.completions.with_streaming_response.create(**kwargs) as raw:
        plain = list(raw.iter_lines())
    harness.init(mode="enforce", audit=False)
    # a client made after init(): with_streaming_response caches the method it wraps on first use
    client = _client(openai_server)
    with harness.run(budget=1.0) as session, client.chat.completions.with_streaming_response.create(**kwargs) as raw:
        enforced = list(raw.iter_lines())
    assert "stream_options" not in openai_server.requests[1].json
    assert _unstamped("\n".join(enforced)) == _unstamped("\n".join(plain))
    step = session.trace()[-1]  # no usage chunk: priced from an upper-bound estimate of what arrived
    assert step.action == "allow" and step.output_tokens >= 9 and step.cost > 0


def test_streaming_response_closed_unread_settles_at_exit(openai_server):
    openai_server.enqueue(text=ANSWER, usage=USAGE)
    harness.init(mode="enforce", audit=False)
    with harness.run(budget=1.0) as session:
        with _client(openai_server).chat.completions.with_streaming_response.create(
                model="gpt-4o-mini", messages=MSGS) as raw:
            assert raw.headers["x-request-id"] == "req_loopback"
        ledger = harness.default_runtime().ledger.state(f"run:{session.run_id}")
        assert ledger.reserved == 0 and session.summary()["steps"] == 1
