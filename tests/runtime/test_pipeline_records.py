"""The pipeline's record of a call: `Runtime.finish` builds one audit record every sink receives, with each
value under its own field; the timestamp and request id it carries; the worst case it reserves."""

from __future__ import annotations

import re
from dataclasses import fields
from datetime import UTC, datetime, timedelta

import pytest

from cascadeflow import ModelConfig, harness
from cascadeflow.messages import build_request
from cascadeflow.runtime.pipeline import Runtime
from cascadeflow.stamps import new_request_id, now_iso
from cascadeflow.testing import MemoryLedger, ScriptedProvider
from cascadeflow.trace.records import AuditRecord

MODEL = ModelConfig(name="m", provider="openai", input_price_per_million=1, output_price_per_million=4)
VARYING = {"timestamp", "request_id", "latency_ms", "latency_total_ms", "run_id"}  # differ between equal calls


def _steady(value):
    """`value` without the fields that differ between two otherwise identical calls."""
    if isinstance(value, dict):
        return {k: _steady(v) for k, v in value.items() if k not in VARYING}
    if isinstance(value, list):
        return [_steady(v) for v in value]
    return value


class ListSink:
    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    def write(self, record: AuditRecord) -> None:
        self.records.append(record)


@pytest.fixture
def counted(monkeypatch) -> list[int]:
    """One entry per token estimate the pipeline makes (estimate_input_tokens, spied where the per-call cap,
    which makes every estimate, reads it)."""
    from cascadeflow.runtime import cap
    from cascadeflow.tokens import estimate_input_tokens

    calls: list[int] = []

    def counting(messages, tools=()):
        calls.append(1)
        return estimate_input_tokens(messages, tools)

    monkeypatch.setattr(cap, "estimate_input_tokens", counting)
    return calls


@pytest.fixture(autouse=True)
def clean_harness():
    harness.reset()
    yield
    harness.reset()


async def _one_call(runtime: Runtime, **scope_kw) -> tuple[dict, list[dict]]:
    """One call inside a run scope, ended with `finish`; the scope's summary and trace."""
    with harness.run(**scope_kw) as scope:
        call = runtime.new_call(model_requested=MODEL.id, metadata={"sdk": "test"})
        response, record = await runtime.attempt(MODEL, build_request("hello there", max_tokens=50), call)
        runtime.finish(call, action="allow", model_selected=record.model, response=response)
    return _steady(scope.summary()), _steady([{f.name: getattr(d, f.name) for f in fields(d)} for d in scope.trace()])


def test_timestamp_is_iso_utc_with_milliseconds_and_now() -> None:
    before = datetime.now(UTC)
    stamp = now_iso()
    after = datetime.now(UTC)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp)
    moment = datetime.fromisoformat(stamp)
    assert before - timedelta(milliseconds=1) <= moment <= after
    assert stamp == moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_request_ids_are_32_hex_digits_and_distinct() -> None:
    ids = [new_request_id() for _ in range(10_000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_request_ids_stay_distinct_across_threads_and_a_forked_child() -> None:
    import os
    import threading

    got: list[list[str]] = [[] for _ in range(8)]

    def take(out: list[str]) -> None:
        out.extend(new_request_id() for _ in range(5_000))

    threads = [threading.Thread(target=take, args=(out,)) for out in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [i for out in got for i in out]
    assert len(set(ids)) == len(ids) == 40_000

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child takes ids after the fork and sends them to the parent
        os.close(read)
        os.write(write, "\n".join(new_request_id() for _ in range(100)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read().split("\n")
    os.waitpid(pid, 0)
    parent = [new_request_id() for _ in range(100)]
    assert len(child) == 100 and not set(child) & set(parent)
    assert child[0][:16] != parent[0][:16]  # the child drew its own prefix instead of continuing the parent's


async def test_an_observed_call_without_a_budget_estimates_no_tokens_but_a_failed_one_is_charged(counted) -> None:
    from cascadeflow.tokens import estimate_input_tokens

    runtime = Runtime(resolve_provider=ScriptedProvider(default="answer").resolver())
    request = build_request("hello there", max_tokens=50)
    _, record = await runtime.attempt(MODEL, request, runtime.new_call(model_requested=MODEL.id))
    assert counted == [] and record.reserved_usd is None and record.cost > 0

    async def cut_off(sent):
        raise TimeoutError("connection lost mid-answer")  # may have been billed: charged the worst case

    call = runtime.new_call(model_requested=MODEL.id)
    with pytest.raises(TimeoutError):
        await runtime.attempt(MODEL, request, call, invoke=cut_off)
    worst = runtime.price_book.worst_case(MODEL, estimate_input_tokens(request.messages), 50)
    assert counted == [1] and call.attempts[0].cost == call.attempts[0].reserved_usd == worst


async def test_the_policy_checks_and_the_ledger_reserves_the_same_worst_case() -> None:
    from cascadeflow.tokens import estimate_input_tokens

    # the policy prices with the harness runtime's price book (as the SDK instrumentation's runtime does)
    runtime = Runtime(resolve_provider=ScriptedProvider(default="answer").resolver(), ledger=MemoryLedger(),
                      price_book=harness.default_runtime().price_book)
    request = build_request("hello there", max_tokens=50)
    with harness.run(budget=1.0, mode="enforce"):
        call = runtime.new_call(model_requested=MODEL.id)
        _, record = await runtime.attempt(MODEL, request, call)
    assert record.reserved_usd == runtime.price_book.worst_case(MODEL, estimate_input_tokens(request.messages), 50)


def test_request_with_is_a_copy_with_the_changes() -> None:
    from dataclasses import replace

    request = build_request("hi", model="m", max_tokens=1000)
    changed = request.with_(model="m", max_tokens=999)
    assert changed == replace(request, max_tokens=999) and request.max_tokens == 1000


@pytest.mark.parametrize("record_content", [False, True])
async def test_finish_writes_content_only_to_a_sink_that_records_it(tmp_path, record_content) -> None:
    import json

    from cascadeflow.trace.jsonl import JsonlSink

    sink = JsonlSink(tmp_path / "audit.jsonl", record_content=record_content)
    listed = ListSink()
    runtime = Runtime(resolve_provider=ScriptedProvider(default="four words of answer").resolver(),
                      sinks=[sink, listed])
    await _one_call(runtime, budget=1.0, mode="observe")
    sink.close()
    (line,) = (tmp_path / "audit.jsonl").read_text().splitlines()
    written = json.loads(line)
    assert ("prompt" in written, "answer" in written) == (record_content, record_content)
    (record,) = listed.records  # the one record, as every sink receives it
    expected = record.to_dict()
    if not record_content:
        expected.pop("prompt"), expected.pop("answer")
    assert written == json.loads(json.dumps(expected))
    assert record.prompt == [{"role": "user", "content": "hello there"}] and record.answer == "four words of answer"


@pytest.mark.parametrize("max_tokens", [50, None])
@pytest.mark.parametrize("model_name", [None, "m", "other"])
def test_fit_to_cap_returns_what_with_returns_for_the_same_changes(max_tokens, model_name) -> None:
    runtime = Runtime()
    request = build_request("hello there", model="m", max_tokens=max_tokens)
    call = runtime.new_call(model_requested=MODEL.id)
    fitted, original, _ = runtime.fit_to_cap(MODEL, request, call, model_name=model_name)
    wanted = runtime.max_tokens_for(MODEL, request)
    expected = request.with_(max_tokens=wanted, **({} if model_name is None else {"model": model_name}))
    assert fitted == expected
    assert type(fitted.max_tokens) is type(expected.max_tokens) and original == wanted


def test_fit_to_cap_sets_the_compute_cap_for_each_model_it_is_given() -> None:
    runtime = Runtime()
    priced = MODEL
    compute = ModelConfig(name="c", provider="openai", compute_cost_per_hour=3.6)
    request = build_request("hello there", model="m", max_tokens=50)
    for model in (priced, compute, priced, compute):
        fitted, _, _ = runtime.fit_to_cap(model, request, runtime.new_call(), model_name=model.name)
        assert (fitted.max_compute_seconds is not None) == (model is compute)


async def test_the_audit_record_carries_each_value_under_its_own_field_name() -> None:
    # audit_record passes AuditRecord's fields positionally: a reordered dataclass must not shift values
    runtime = Runtime(resolve_provider=ScriptedProvider(default="four words of answer").resolver())
    call = runtime.new_call(user_id="alice", agent_id="triage", metadata={"alert_id": "INC-1"},
                            routing_reason="severity=P0", model_requested=MODEL.id)
    response, attempt = await runtime.attempt(MODEL, build_request("hello there", max_tokens=50), call)
    record = runtime.audit_record(call, action="allow", model_selected=attempt.model, response=response,
                                  error=ValueError("late"))
    assert (record.request_id, record.user_id, record.agent_id) == (call.request_id, "alice", "triage")
    assert (record.mode, record.action, record.routing_reason) == ("off", "allow", "severity=P0")
    assert (record.model_requested, record.model_selected) == (MODEL.id, MODEL.id)
    assert (record.input_tokens, record.output_tokens) == (attempt.input_tokens, attempt.output_tokens)
    assert record.cost_usd == float(attempt.cost) > 0 and record.latency_ms > 0 and record.budget_remaining is None
    assert record.price_version == runtime.price_book.version and record.metadata == {"alert_id": "INC-1"}
    assert record.tiers == [attempt.to_dict()] and record.error == "ValueError: late" and record.run_id is None
    assert record.prompt == [{"role": "user", "content": "hello there"}] and record.answer == "four words of answer"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record.timestamp)


def test_round_ms_agrees_with_round_to_three_places() -> None:
    import random

    from cascadeflow.stamps import round_ms

    rng = random.Random(3)
    for _ in range(50_000):
        ms = rng.random() * 10 ** rng.randint(-4, 7)
        assert round_ms(ms) == round(ms, 3), ms
    assert round_ms(0.0) == 0.0 and round_ms(2.0005) == 2.001 and round_ms(-1.23456) == -1.235


def test_request_ids_past_the_counters_64_bits_stay_hex_and_distinct(monkeypatch) -> None:
    import itertools

    from cascadeflow import stamps

    monkeypatch.setattr(stamps._request_ids, "counter", itertools.count(2**64 - 2))
    ids = [new_request_id() for _ in range(4)]
    assert all(re.fullmatch(r"[0-9a-f]{32,}", i) for i in ids) and len(set(ids)) == 4
    assert ids[0].endswith("f" * 15 + "e") and ids[2].endswith("1" + "0" * 16)
