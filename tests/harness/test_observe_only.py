"""The record-only path of an observe-mode SDK call (bridge.observe_only): taken only when nothing could act on
the call, and it writes the audit record the full pipeline writes for the same call. Each case makes the same
call twice with the real SDKs against the loopback servers: once on the record-only path, once with it turned
off (the full path: view, pipeline coroutine, Runtime.attempt)."""

from __future__ import annotations

import asyncio
import json

import anthropic
import openai
import pytest

from cascadeflow import harness
from cascadeflow.harness.instrument import patching

VARYING = {"timestamp", "request_id", "latency_ms"}  # differ between two otherwise equal calls
MSGS = [{"role": "user", "content": "Is the checkout service healthy?"}]
CLAUDE = "claude-3-5-haiku-20241022"


def _steady(value):
    if isinstance(value, dict):
        return {k: _steady(v) for k, v in value.items() if k not in VARYING}
    if isinstance(value, list):
        return [_steady(v) for v in value]
    return value


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _openai(server, **kw):
    return openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0, **kw)


def _anthropic(server):
    return anthropic.Anthropic(base_url=server.base_url, api_key="sk-ant-test", max_retries=0)


CALLS = {  # name -> (server fixture, call with a client made after init())
    "chat": ("openai_server", lambda s: _openai(s).chat.completions.create(
        model="gpt-4o-mini", messages=MSGS, max_tokens=64)),
    "chat without max_tokens": ("openai_server", lambda s: _openai(s).chat.completions.create(
        model="gpt-4o-mini", messages=MSGS)),
    "chat with_raw_response": ("openai_server", lambda s: _openai(s).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MSGS, max_completion_tokens=32).parse()),
    "chat async": ("openai_server", lambda s: asyncio.run(openai.AsyncOpenAI(
        base_url=s.base_url, api_key="sk-test", max_retries=0).chat.completions.create(
        model="gpt-4o-mini", messages=MSGS, max_tokens=64))),
    "chat, unpriced model": ("openai_server", lambda s: _openai(s).chat.completions.create(
        model="no-such-model-7b", messages=MSGS, max_tokens=64)),
    "responses": ("openai_server", lambda s: _openai(s).responses.create(
        model="gpt-4o-mini", input="Is checkout healthy?", instructions="brief", max_output_tokens=50)),
    "anthropic": ("anthropic_server", lambda s: _anthropic(s).messages.create(
        model=CLAUDE, max_tokens=200, system="careful", messages=MSGS)),
    "anthropic async": ("anthropic_server", lambda s: asyncio.run(anthropic.AsyncAnthropic(
        base_url=s.base_url, api_key="sk-ant-test", max_retries=0).messages.create(
        model=CLAUDE, max_tokens=200, messages=MSGS))),
}


def _both_paths(request, monkeypatch, tmp_path, name, reply):
    """The audit records of `name`'s call on the record-only path and on the full path, in that order."""
    server_name, make_call = CALLS[name]
    server = request.getfixturevalue(server_name)
    records = []
    for record_only in (True, False):
        harness.reset()
        path = tmp_path / f"audit-{record_only}.jsonl"
        harness.init(mode="observe", audit=str(path))
        with monkeypatch.context() as patch:
            if record_only:  # prove the full path is not taken
                patch.setattr(patching, "prepare", lambda *a: pytest.fail("took the full path"))
            else:
                patch.setattr(patching, "observe_only", lambda *a: None)
            server.enqueue(**reply)
            try:
                make_call(server)
            except Exception as exc:  # noqa: BLE001 - a scripted failure: the record is what is compared
                records.append(type(exc))
        records.extend(_records(path))
    return records


@pytest.mark.parametrize("name", sorted(CALLS))
def test_the_record_only_path_writes_the_full_paths_record(name, request, monkeypatch, tmp_path):
    fast, full = _both_paths(request, monkeypatch, tmp_path, name, {"text": "All green.",
                                                                     "usage": {"input": 21, "output": 3}})
    assert _steady(fast) == _steady(full)
    assert fast["action"] == "allow" and fast["input_tokens"] == 21 and fast["output_tokens"] == 3
    assert fast["tiers"][0]["latency_ms"] > 0 and fast["latency_ms"] >= fast["tiers"][0]["latency_ms"]
    if name == "chat without max_tokens":
        assert fast["tiers"][0]["max_tokens"] == 4096  # as fit_to_cap fills it in on the full path
    if name == "chat, unpriced model":
        assert fast["metadata"]["unpriced"] is True and fast["cost_usd"] == 0.0


def test_a_refused_call_is_recorded_as_an_error_costing_nothing_on_both_paths(request, monkeypatch, tmp_path):
    fast_error, fast, full_error, full = _both_paths(request, monkeypatch, tmp_path, "chat",
                                                     {"status": 500, "error": "upstream down"})
    assert fast_error is full_error is openai.InternalServerError
    assert _steady(fast) == _steady(full)
    assert fast["action"] == "error" and fast["cost_usd"] == 0.0 and fast["tiers"][0]["status"] == "error"


def test_a_timed_out_call_is_charged_its_worst_case_from_the_view_built_on_demand(request, monkeypatch, tmp_path):
    CALLS["chat, timing out"] = ("openai_server", lambda s: _openai(s, timeout=0.2).chat.completions
                                 .create(model="gpt-4o-mini", messages=MSGS, max_tokens=64))
    try:
        fast_error, fast, full_error, full = _both_paths(request, monkeypatch, tmp_path, "chat, timing out",
                                                         {"text": "late", "delay": 1.0})
    finally:
        del CALLS["chat, timing out"]
    assert fast_error is full_error is openai.APITimeoutError
    assert _steady(fast) == _steady(full)
    assert fast["cost_usd"] > 0 and "charged its reserved worst case" in fast["tiers"][0]["error"]


def test_an_answer_without_usage_is_estimated_from_the_view_built_on_demand(request, monkeypatch, tmp_path):
    body = json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
                       "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": "All green."}}]})
    fast, full = _both_paths(request, monkeypatch, tmp_path, "chat", {"body": body})
    assert _steady(fast) == _steady(full)
    assert fast["input_tokens"] > 0 and fast["cost_usd"] > 0


def _took_full_path(monkeypatch) -> list[int]:
    taken: list[int] = []
    real = patching.prepare
    monkeypatch.setattr(patching, "prepare", lambda *a: taken.append(1) or real(*a))
    return taken


def test_a_run_scope_a_content_sink_or_a_stream_takes_the_full_path(openai_server, monkeypatch, tmp_path):
    taken = _took_full_path(monkeypatch)
    for _ in range(4):
        openai_server.enqueue(text="ok")
    harness.init(mode="observe", audit=str(tmp_path / "a.jsonl"))
    client = _openai(openai_server)
    client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, max_tokens=8)
    assert taken == []
    with harness.run(name="incident"):
        client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, max_tokens=8)
    assert taken == [1]
    list(client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, max_tokens=8, stream=True))
    assert taken == [1, 1]
    harness.reset()
    harness.init(mode="observe", audit=str(tmp_path / "b.jsonl"), record_content=True)
    _openai(openai_server).chat.completions.create(model="gpt-4o-mini", messages=MSGS, max_tokens=8)
    assert taken == [1, 1, 1]
    assert json.loads((tmp_path / "b.jsonl").read_text())["prompt"] == MSGS


def test_model_statistics_come_from_calls_inside_a_run_scope_only(openai_server, tmp_path):
    for _ in range(2):
        openai_server.enqueue(text="ok")
    harness.init(mode="observe", audit=str(tmp_path / "a.jsonl"))
    client = _openai(openai_server)
    client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, max_tokens=8)
    assert harness.model_stats().get("openai/gpt-4o-mini") is None  # audited (below), not measured
    with harness.run(name="incident"):
        client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, max_tokens=8)
    measured = harness.model_stats().get("openai/gpt-4o-mini")
    assert measured is not None and measured.calls == 1 and measured.quality == 1.0
    assert len(_records(tmp_path / "a.jsonl")) == 2
