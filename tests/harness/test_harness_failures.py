"""A failure of the harness's own code (a bug, or an SDK shape it does not know, say from a newer SDK) around an
SDK call: in observe mode it never keeps the call from being sent (the call goes to the SDK unobserved, and the
failure is logged); in enforce mode it fails closed before sending; once the SDK has answered, the caller gets
the answer in either mode (the result, every event of a stream, the body of a lazily read response) and the call
is recorded with the error: an answer it cannot read as an UnreadableAnswer, charged its worst case, its
reservation settled. Each case breaks one step of ours with the real SDKs against the loopback servers."""

from __future__ import annotations

import asyncio
import json
import logging
from decimal import Decimal

import anthropic
import openai
import pytest

from cascadeflow import harness
from cascadeflow.harness.instrument import anthropic as anthropic_instrument
from cascadeflow.harness.instrument import bridge
from cascadeflow.harness.instrument.openai import ChatCompletionsAdapter, ChatStreamAccumulator
from cascadeflow.harness.policy import HarnessPolicy
from cascadeflow.runtime.pipeline import Runtime

MSGS = [{"role": "user", "content": "Is the checkout service healthy?"}]
CLAUDE = "claude-3-5-haiku-20241022"


def _bug(*args, **kwargs):
    raise TypeError("'NoneType' object is not subscriptable")


def _oa(server):
    return openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)


def _chat(client, **kw):
    return client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, max_tokens=32, **kw)


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_observe_mode_sends_a_call_the_policy_failed_on_unobserved(openai_server, monkeypatch, audit_path,
                                                                   caplog):
    openai_server.enqueue(text="all green")
    monkeypatch.setattr(HarnessPolicy, "before_attempt", _bug)
    harness.init(mode="observe", audit=str(audit_path))
    with caplog.at_level(logging.ERROR, logger="cascadeflow"), harness.run(budget=1.0) as session:
        completion = _chat(_oa(openai_server))
    assert completion.choices[0].message.content == "all green" and len(openai_server.requests) == 1
    assert "the pipeline before sending failed (TypeError" in caplog.text and "sent unobserved" in caplog.text
    assert _records(audit_path) == [] and session.summary()["calls"] == 0  # unobserved: nothing recorded


def test_observe_mode_sends_a_call_the_record_only_path_failed_on_unobserved(openai_server, monkeypatch,
                                                                             audit_path, caplog):
    openai_server.enqueue(text="all green")
    monkeypatch.setattr(bridge, "model_for", _bug)
    harness.init(mode="observe", audit=str(audit_path))
    with caplog.at_level(logging.ERROR, logger="cascadeflow"):
        completion = _chat(_oa(openai_server))
    assert completion.choices[0].message.content == "all green"
    assert "preparing the call failed (TypeError" in caplog.text and _records(audit_path) == []


def test_observe_mode_async_and_anthropic_stream_helper_go_on_unobserved(openai_server, anthropic_server,
                                                                         monkeypatch, audit_path):
    openai_server.enqueue(text="all green")
    anthropic_server.enqueue(text="all green")
    monkeypatch.setattr(HarnessPolicy, "before_attempt", _bug)
    harness.init(mode="observe", audit=str(audit_path))

    async def chat():
        client = openai.AsyncOpenAI(base_url=openai_server.base_url, api_key="sk-test", max_retries=0)
        return await client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, max_tokens=32)

    client = anthropic.Anthropic(base_url=anthropic_server.base_url, api_key="sk-ant-test", max_retries=0)
    with harness.run():
        completion = asyncio.run(chat())
        with client.messages.stream(model=CLAUDE, max_tokens=50, messages=MSGS) as stream:
            text = "".join(stream.text_stream)
    assert completion.choices[0].message.content == "all green" and text == "all green"
    assert _records(audit_path) == []


def test_enforce_mode_fails_closed_before_sending(openai_server, monkeypatch, audit_path):
    monkeypatch.setattr(HarnessPolicy, "before_attempt", _bug)
    harness.init(mode="enforce", audit=str(audit_path))
    with harness.run(budget=1.0), pytest.raises(TypeError):
        _chat(_oa(openai_server))
    assert openai_server.requests == []
    [record] = _records(audit_path)
    assert record["action"] == "error" and record["error"].startswith("TypeError")


@pytest.mark.parametrize("mode", ["observe", "enforce"])
def test_an_answered_call_reaches_the_caller_when_pricing_it_fails(mode, openai_server, monkeypatch, audit_path,
                                                                   caplog):
    openai_server.enqueue(text="all green", usage={"input": 9, "output": 2})
    monkeypatch.setattr(Runtime, "price_answer", _bug)
    harness.init(mode=mode, audit=str(audit_path))
    with caplog.at_level(logging.ERROR, logger="cascadeflow"), harness.run(budget=1.0) as session:
        completion = _chat(_oa(openai_server))
    assert completion.choices[0].message.content == "all green"
    assert "recording an answered openai.chat.completions call failed (TypeError" in caplog.text
    [record] = _records(audit_path)
    assert record["action"] == "error" and record["error"].startswith("TypeError")
    assert "charged its reserved worst case" in record["tiers"][0]["error"] and record["cost_usd"] > 0
    assert session.summary()["cost_total"] == pytest.approx(record["cost_usd"])  # the run pays it too
    if mode == "enforce":  # answered, not priced: the ledger is charged the reserved worst case and settled
        state = harness.default_runtime().ledger.state(f"run:{session.run_id}")
        assert state.reserved == 0 and state.spent > 0


def test_an_answered_call_on_the_record_only_path_reaches_the_caller_when_recording_fails(
        openai_server, monkeypatch, audit_path, caplog):
    openai_server.enqueue(text="all green")
    monkeypatch.setattr(Runtime, "price_answer", _bug)
    harness.init(mode="observe", audit=str(audit_path))
    with caplog.at_level(logging.ERROR, logger="cascadeflow"):
        completion = _chat(_oa(openai_server))
    assert completion.choices[0].message.content == "all green"
    assert "recording an answered openai.chat.completions call failed" in caplog.text
    [record] = _records(audit_path)  # recorded as the full path records it: failed, charged its worst case
    assert record["action"] == "error" and record["error"].startswith("TypeError") and record["cost_usd"] > 0


def test_a_delivered_stream_ends_normally_when_settling_it_fails(openai_server, monkeypatch, audit_path, caplog):
    openai_server.enqueue(text="one two", usage={"input": 5, "output": 2})
    monkeypatch.setattr(HarnessPolicy, "after_attempt", _bug)
    harness.init(mode="enforce", audit=str(audit_path))
    with caplog.at_level(logging.ERROR, logger="cascadeflow"), harness.run(budget=1.0) as session:
        stream = _chat(_oa(openai_server), stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "one two"
    assert "settling a openai.chat.completions stream failed (TypeError" in caplog.text
    [record] = _records(audit_path)
    assert record["action"] == "error" and record["error"].startswith("TypeError")
    state = harness.default_runtime().ledger.state(f"run:{session.run_id}")
    assert state.reserved == 0  # priced and settled before the failing step


def test_runtime_charges_an_answer_it_cannot_price_its_worst_case(monkeypatch):
    from cascadeflow.budget.backends.memory import MemoryLedger
    from cascadeflow.messages import build_request
    from cascadeflow.models import ModelConfig
    from cascadeflow.pricing import to_micro_usd
    from cascadeflow.runtime.pipeline import Charge
    from cascadeflow.testing import ScriptedProvider

    ledger = MemoryLedger()
    runtime = Runtime(ledger=ledger, resolve_provider=ScriptedProvider(default="fine").resolver())
    monkeypatch.setattr(runtime.price_book, "cost", _bug)
    model = ModelConfig(name="gpt-4o-mini", provider="openai")
    call = runtime.new_call(charges=[Charge("day:ops", 1_000_000)])
    with pytest.raises(TypeError):
        asyncio.run(runtime.attempt(model, build_request("hello", max_tokens=100), call))
    [attempt] = call.attempts
    assert attempt.cost == attempt.reserved_usd and attempt.cost > Decimal(0)
    state = ledger.state("day:ops")
    assert state.reserved == 0 and state.spent == to_micro_usd(attempt.cost)


def _broken(*args, **kwargs):
    raise AttributeError("'ChatCompletion' object has no attribute 'choices'")


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
