"""The audit-failure policy: no accepted record is lost silently. A failing sink's records go to the spool
(and are counted when even that fails); observe mode keeps calls flowing; enforce mode refuses to send while
a sink is known broken, and resumes once it takes writes again. The full disk is the real JsonlSink writing
to /dev/full."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from cascadeflow import AuditUnavailable, ModelConfig, harness
from cascadeflow.cli.basic import audit_spool_check
from cascadeflow.flow.client import CascadeFlow
from cascadeflow.runtime.pipeline import Runtime
from cascadeflow.testing import ScriptedProvider
from cascadeflow.trace.jsonl import JsonlSink

MODEL = ModelConfig(name="m", provider="openai", input_price_per_million=1, output_price_per_million=4)


@pytest.fixture(autouse=True)
def clean_harness():
    harness.reset()
    yield
    harness.reset()


@pytest.fixture
def full_disk_sink(tmp_path) -> JsonlSink:
    """A JsonlSink whose log is /dev/full: every append fails with ENOSPC, as on a full disk."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    log = tmp_path / "audit.jsonl"
    log.symlink_to("/dev/full")
    return JsonlSink(log)


class RecoveringSink:
    """A sink that refuses writes until `recover()` (a server that comes back)."""

    def __init__(self) -> None:
        self.records: list = []
        self.down = True

    def write(self, record) -> None:
        if self.down:
            raise ConnectionError("audit server unreachable")
        self.records.append(record)


def _spooled(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_observe_mode_keeps_calls_flowing_on_a_full_disk_and_spools_every_record(full_disk_sink, tmp_path):
    spool = tmp_path / "spool.jsonl"
    provider = ScriptedProvider(default="fine")
    runtime = Runtime(resolve_provider=provider.resolver(), sinks=[full_disk_sink], audit_spool=spool)
    cf = CascadeFlow(runtime=runtime)
    with harness.run(mode="observe"):
        results = [cf.complete(model=MODEL, messages=f"question {i}") for i in range(20)]
    assert [r.content for r in results] == ["fine"] * 20 and len(provider.requests) == 20
    assert [r["request_id"] for r in _spooled(spool)] == [r.request_id for r in results]
    assert (runtime.delivery.spooled, runtime.delivery.lost) == (20, 0)
    assert runtime.delivery.broken == [full_disk_sink]


def test_records_neither_the_sink_nor_the_spool_took_are_counted_and_logged(full_disk_sink, tmp_path, caplog):
    provider = ScriptedProvider(default="fine")
    runtime = Runtime(resolve_provider=provider.resolver(), sinks=[full_disk_sink], audit_spool="/dev/full")
    with harness.run(mode="observe"), caplog.at_level(logging.ERROR):
        for i in range(3):
            CascadeFlow(runtime=runtime).complete(model=MODEL, messages=f"question {i}")
    assert runtime.delivery.lost == 3
    assert any("3 records lost in this process" in r.getMessage() for r in caplog.records)


def test_enforce_mode_refuses_to_send_while_a_sink_is_broken_and_resumes_when_it_recovers(tmp_path):
    spool = tmp_path / "spool.jsonl"
    sink = RecoveringSink()
    provider = ScriptedProvider(default="fine")
    runtime = Runtime(resolve_provider=provider.resolver(), sinks=[sink], audit_spool=spool)
    cf = CascadeFlow(runtime=runtime)
    with harness.run(mode="enforce"):
        first = cf.complete(model=MODEL, messages="first")  # the sink's failure shows only after this call
        with pytest.raises(AuditUnavailable):
            cf.complete(model=MODEL, messages="second")
        assert len(provider.requests) == 1  # the second call was not sent
        refused = _spooled(spool)[-1]
        assert refused["action"] == "error" and "AuditUnavailable" in refused["error"]
        sink.down = False
        third = cf.complete(model=MODEL, messages="third")
    assert len(provider.requests) == 2
    # the sink got what it refused, in order, before the new record
    assert [r.request_id for r in sink.records] == [first.request_id, refused["request_id"], third.request_id]
    assert runtime.delivery.broken == [] and runtime.delivery.lost == 0


def test_doctor_counts_the_records_waiting_in_the_spool(tmp_path):
    spool = tmp_path / "spool.jsonl"
    env = {"CASCADEFLOW_AUDIT_SPOOL": str(spool)}
    assert audit_spool_check(env).ok is True
    runtime = Runtime(resolve_provider=ScriptedProvider(default="fine").resolver(), sinks=[RecoveringSink()],
                      audit_spool=spool)
    for i in range(2):
        CascadeFlow(runtime=runtime).complete(model=MODEL, messages=f"question {i}")
    check = audit_spool_check(env)
    assert check.ok is False and "2 records" in check.detail and str(spool) in check.detail


def test_an_sdk_call_in_observe_mode_on_a_full_disk_is_answered_and_spooled(openai_server, tmp_path):
    import openai

    spool = tmp_path / "spool.jsonl"
    log = tmp_path / "audit.jsonl"
    log.symlink_to("/dev/full")
    harness.init(mode="observe", audit=str(log), audit_spool=spool)
    openai_server.enqueue(text="All green.", usage={"input": 7, "output": 2})
    client = openai.OpenAI(base_url=openai_server.base_url, api_key="sk-test", max_retries=0)
    answer = client.chat.completions.create(model="gpt-4o-mini", max_tokens=16,
                                            messages=[{"role": "user", "content": "healthy?"}])
    assert answer.choices[0].message.content == "All green."
    (record,) = _spooled(spool)
    assert record["action"] == "allow" and record["input_tokens"] == 7 and record["metadata"]["sdk"]
