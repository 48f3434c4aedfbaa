"""A stream the host (or a proxy) ends cleanly before its final event: the SDK ends it like any other, the
caller keeps every event that arrived, and the call is recorded as a failure charged its worst case, not as
an answer priced from the delivered text. openai and anthropic, observe and enforce."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

MSGS = [{"role": "user", "content": "Is the checkout service healthy?"}]
TEXT = "one two three four five six seven eight"


def _openai_stream(server):
    client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
    return client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, max_tokens=64, stream=True)


def _anthropic_stream(server):
    client = anthropic.Anthropic(base_url=server.base_url, api_key="sk-ant-test", max_retries=0)
    return client.messages.create(model="claude-3-5-haiku-20241022", max_tokens=64, messages=MSGS, stream=True)


SDKS = {"openai": ("openai_server", _openai_stream), "anthropic": ("anthropic_server", _anthropic_stream)}


@pytest.mark.parametrize("mode", ["observe", "enforce"])
@pytest.mark.parametrize("sdk", sorted(SDKS))
def test_a_stream_ended_before_its_final_event_is_recorded_as_a_failure_charged_its_worst_case(
        sdk, mode, request, audit_path):
    from cascadeflow import harness

    server_name, open_stream = SDKS[sdk]
    server = request.getfixturevalue(server_name)
    server.enqueue(text=TEXT, end_after=3, usage={"input": 9, "output": 8})
    harness.init(mode=mode, audit=str(audit_path))
    with harness.run(budget=1.0) as scope:
        events = list(open_stream(server))  # no error reaches the caller: the SDK ended the stream normally
    assert events  # what arrived before the cut reached the caller
    (record,) = [json.loads(line) for line in audit_path.read_text().splitlines()]
    tier = record["tiers"][0]
    assert record["action"] == "error" and tier["status"] == "error"
    assert "ended before its final event" in record["error"] and "charged its reserved worst case" in tier["error"]
    assert tier["cost_usd"] > 0 and record["cost_usd"] == tier["cost_usd"]
    assert scope.summary()["cost_total"] == pytest.approx(tier["cost_usd"])


@pytest.mark.parametrize("sdk", sorted(SDKS))
def test_a_whole_stream_is_still_priced_from_its_usage(sdk, request, audit_path):
    from cascadeflow import harness

    server_name, open_stream = SDKS[sdk]
    server = request.getfixturevalue(server_name)
    server.enqueue(text=TEXT, usage={"input": 9, "output": 8})
    harness.init(mode="enforce", audit=str(audit_path))
    list(open_stream(server))
    (record,) = [json.loads(line) for line in audit_path.read_text().splitlines()]
    assert record["action"] == "allow" and record["error"] is None
    assert (record["input_tokens"], record["output_tokens"]) == (9, 8)


def _record(audit_path):
    (record,) = [json.loads(line) for line in audit_path.read_text().splitlines()]
    return record


def _assert_cut(record, scope):
    tier = record["tiers"][0]
    assert record["action"] == "error" and "ended before its final event" in record["error"]
    assert "charged its reserved worst case" in tier["error"] and tier["cost_usd"] > 0
    assert scope.summary()["cost_total"] == pytest.approx(tier["cost_usd"])


def _assert_not_cut(record):
    assert record["action"] == "allow" and record["error"] is None


def _anthropic(server):
    return anthropic.Anthropic(base_url=server.base_url, api_key="sk-ant-test", max_retries=0)


def _anthropic_async(server):
    return anthropic.AsyncAnthropic(base_url=server.base_url, api_key="sk-ant-test", max_retries=0)


STREAM_CALL = {"model": "claude-3-5-haiku-20241022", "max_tokens": 64, "messages": MSGS}


@pytest.mark.parametrize("mode", ["observe", "enforce"])
def test_a_cut_anthropic_stream_helper_is_a_failure_charged_its_worst_case(mode, anthropic_server, audit_path):
    from cascadeflow import harness

    anthropic_server.enqueue(text=TEXT, end_after=3, usage={"input": 9, "output": 8})
    harness.init(mode=mode, audit=str(audit_path))
    with harness.run(budget=1.0) as scope, _anthropic(anthropic_server).messages.stream(**STREAM_CALL) as stream:
        assert list(stream)  # what arrived reached the caller, with no error
    _assert_cut(_record(audit_path), scope)


async def test_a_cut_async_anthropic_stream_helper_is_a_failure_charged_its_worst_case(anthropic_server, audit_path):
    from cascadeflow import harness

    anthropic_server.enqueue(text=TEXT, end_after=3, usage={"input": 9, "output": 8})
    harness.init(mode="enforce", audit=str(audit_path))
    async with harness.run(budget=1.0) as scope, _anthropic_async(anthropic_server).messages.stream(
            **STREAM_CALL) as stream:
        assert [event async for event in stream]
    _assert_cut(_record(audit_path), scope)


def test_leaving_an_anthropic_stream_helper_early_is_no_cut(anthropic_server, audit_path):
    from cascadeflow import harness

    anthropic_server.enqueue(text=TEXT, usage={"input": 9, "output": 8})
    harness.init(mode="enforce", audit=str(audit_path))
    with harness.run(budget=1.0), _anthropic(anthropic_server).messages.stream(**STREAM_CALL) as stream:
        for _event in stream:
            break  # the caller has what it needs
    _assert_not_cut(_record(audit_path))


def test_a_whole_anthropic_stream_helper_is_priced_from_its_usage(anthropic_server, audit_path):
    from cascadeflow import harness

    anthropic_server.enqueue(text=TEXT, usage={"input": 9, "output": 8})
    harness.init(mode="enforce", audit=str(audit_path))
    with _anthropic(anthropic_server).messages.stream(**STREAM_CALL) as stream:
        stream.until_done()
    record = _record(audit_path)
    _assert_not_cut(record)
    assert (record["input_tokens"], record["output_tokens"]) == (9, 8)


@pytest.mark.parametrize("read", ["iter_lines", "read"])
@pytest.mark.parametrize("sdk", ["anthropic", "openai"])
def test_a_cut_body_read_through_with_streaming_response_is_a_failure(sdk, read, request, audit_path):
    from cascadeflow import harness

    server = request.getfixturevalue(f"{sdk}_server")
    server.enqueue(text=TEXT, end_after=3, usage={"input": 9, "output": 8})
    harness.init(mode="enforce", audit=str(audit_path))
    with harness.run(budget=1.0) as scope:
        if sdk == "anthropic":
            opened = _anthropic(server).messages.with_streaming_response.create(**STREAM_CALL, stream=True)
        else:
            client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
            opened = client.chat.completions.with_streaming_response.create(
                model="gpt-4o-mini", messages=MSGS, max_tokens=64, stream=True)
        with opened as response:
            body = list(response.iter_lines()) if read == "iter_lines" else response.read()
            assert body
    _assert_cut(_record(audit_path), scope)


def test_closing_a_with_streaming_response_body_early_is_no_cut(anthropic_server, audit_path):
    from cascadeflow import harness

    anthropic_server.enqueue(text=TEXT, usage={"input": 9, "output": 8})
    harness.init(mode="enforce", audit=str(audit_path))
    opened = _anthropic(anthropic_server).messages.with_streaming_response.create(**STREAM_CALL, stream=True)
    with opened as response:
        for _line in response.iter_lines():
            break
    _assert_not_cut(_record(audit_path))
