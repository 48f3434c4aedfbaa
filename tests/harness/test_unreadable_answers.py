"""An SDK answer the harness cannot read (a shape its adapter does not know, say from a newer SDK) never breaks
the caller's call: the caller gets the SDK's result, every event of a stream and the body of a lazily read
response unchanged; the call is recorded as an UnreadableAnswer, charged its worst case, and its reservation
settled. Each case breaks one reading step of ours with the real SDKs against the loopback servers."""

from __future__ import annotations

import asyncio
import json

import anthropic
import openai
import pytest

from cascadeflow import harness
from cascadeflow.harness.instrument import anthropic as anthropic_instrument
from cascadeflow.harness.instrument.openai import ChatCompletionsAdapter, ChatStreamAccumulator

MSGS = [{"role": "user", "content": "Is the checkout service healthy?"}]
CLAUDE = "claude-3-5-haiku-20241022"


def _broken(*args, **kwargs):
    raise AttributeError("'ChatCompletion' object has no attribute 'choices'")


def _oa(server):
    return openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _assert_recorded_unreadable(path, count=1):
    records = _records(path)
    assert len(records) == count
    record = records[-1]
    assert record["action"] == "error" and record["error"].startswith("UnreadableAnswer: ")
    tier = record["tiers"][0]
    assert tier["status"] == "error" and "could not read the " in tier["error"]
    assert "charged its reserved worst case" in tier["error"]
    assert record["cost_usd"] > 0  # usage unknown: the worst case, as for any answer whose usage is lost
    return record


def _assert_settled(session, record):
    ledger = harness.default_runtime().ledger
    assert ledger.state(f"run:{session.run_id}").reserved == 0  # the reservation is not left held
    assert session.summary()["cost_total"] == pytest.approx(record["cost_usd"])


@pytest.mark.parametrize("mode", ["observe", "enforce"])
def test_an_unreadable_answer_reaches_the_caller_unchanged_and_is_recorded(mode, openai_server, monkeypatch,
                                                                           audit_path):
    # observe without a run scope takes the record-only path; enforce in a run takes the full pipeline
    openai_server.enqueue(text="all green", usage={"input": 9, "output": 2})
    monkeypatch.setattr(ChatCompletionsAdapter, "to_response", _broken)
    harness.init(mode=mode, audit=str(audit_path))
    if mode == "observe":
        completion = _oa(openai_server).chat.completions.create(model="gpt-4o-mini", messages=MSGS, max_tokens=32)
        assert completion.choices[0].message.content == "all green"
        _assert_recorded_unreadable(audit_path)
        return
    with harness.run(budget=1.0) as session:
        completion = _oa(openai_server).chat.completions.create(model="gpt-4o-mini", messages=MSGS, max_tokens=32)
    assert completion.choices[0].message.content == "all green"
    _assert_settled(session, _assert_recorded_unreadable(audit_path))


@pytest.mark.parametrize("scoped", [False, True])
def test_an_unreadable_async_or_raw_answer_reaches_the_caller(scoped, openai_server, monkeypatch, audit_path):
    for _ in range(2):
        openai_server.enqueue(text="all green")
    monkeypatch.setattr(ChatCompletionsAdapter, "to_response", _broken)
    harness.init(mode="observe", audit=str(audit_path))

    async def both():
        client = openai.AsyncOpenAI(base_url=openai_server.base_url, api_key="sk-test", max_retries=0)
        plain = await client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, max_tokens=32)
        raw = await client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MSGS,
                                                                     max_tokens=32)
        return plain, raw.parse()  # openai's with_raw_response parses synchronously, async client or not

    if scoped:
        with harness.run():
            plain, parsed = asyncio.run(both())
    else:
        plain, parsed = asyncio.run(both())
    assert plain.choices[0].message.content == parsed.choices[0].message.content == "all green"
    _assert_recorded_unreadable(audit_path, count=2)


def test_a_stream_whose_events_cannot_be_read_is_passed_through_whole(openai_server, monkeypatch, audit_path):
    openai_server.enqueue(text="one two three four", usage={"input": 5, "output": 4})
    fed = []
    real_feed = ChatStreamAccumulator.feed

    def feed_then_break(self, chunk):
        fed.append(chunk)
        if len(fed) == 2:
            raise KeyError("delta")
        return real_feed(self, chunk)

    monkeypatch.setattr(ChatStreamAccumulator, "feed", feed_then_break)
    harness.init(mode="enforce", audit=str(audit_path))
    with harness.run(budget=1.0) as session:
        stream = _oa(openai_server).chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True)
        chunks = list(stream)
        # settled at the event it could not read: the rest passed through without being fed
        _assert_settled(session, _assert_recorded_unreadable(audit_path))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.split() == ["one", "two", "three", "four"] and len(fed) == 2
    # the usage-only chunk enforce asked for is among what passed through unread: the caller sees it
    assert any(not c.choices and c.usage is not None for c in chunks)


def test_a_stream_whose_answer_cannot_be_assembled_ends_normally(openai_server, monkeypatch, audit_path):
    openai_server.enqueue(text="one two", usage={"input": 5, "output": 2})
    monkeypatch.setattr(ChatStreamAccumulator, "response", _broken)
    harness.init(mode="enforce", audit=str(audit_path))
    with harness.run(budget=1.0) as session:
        stream = _oa(openai_server).chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "one two"
    _assert_settled(session, _assert_recorded_unreadable(audit_path))


def test_a_lazily_read_body_that_cannot_be_read_reaches_the_caller(openai_server, monkeypatch, audit_path):
    openai_server.enqueue(text="all green")
    monkeypatch.setattr(ChatCompletionsAdapter, "body_response", _broken)
    harness.init(mode="enforce", audit=str(audit_path))
    client = _oa(openai_server)
    with harness.run(budget=1.0) as session, client.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini", messages=MSGS, max_tokens=32) as response:
        body = response.json()
    assert body["choices"][0]["message"]["content"] == "all green"
    _assert_settled(session, _assert_recorded_unreadable(audit_path))


def test_an_anthropic_stream_helper_whose_snapshot_cannot_be_read_exits_normally(anthropic_server, monkeypatch,
                                                                                audit_path):
    anthropic_server.enqueue(text="all green")
    monkeypatch.setattr(anthropic_instrument, "_snapshot_response", _broken)
    harness.init(mode="enforce", audit=str(audit_path))
    client = anthropic.Anthropic(base_url=anthropic_server.base_url, api_key="sk-ant-test", max_retries=0)
    with harness.run(budget=1.0) as session, client.messages.stream(model=CLAUDE, max_tokens=50,
                                                                    messages=MSGS) as stream:
        text = "".join(stream.text_stream)
    assert text == "all green"
    record = _assert_recorded_unreadable(audit_path)
    assert "could not read the anthropic" in record["tiers"][0]["error"]
    _assert_settled(session, record)


def test_an_error_of_the_sdk_itself_still_reaches_the_caller(openai_server, monkeypatch, audit_path):
    openai_server.enqueue(status=500, error="boom")
    harness.init(mode="observe", audit=str(audit_path))
    with pytest.raises(openai.InternalServerError):
        _oa(openai_server).chat.completions.create(model="gpt-4o-mini", messages=MSGS, max_tokens=32)
    record = _records(audit_path)[0]
    assert record["action"] == "error" and "UnreadableAnswer" not in record["error"]
