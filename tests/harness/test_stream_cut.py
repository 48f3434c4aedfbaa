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
