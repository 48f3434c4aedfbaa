"""Instrumented SDK calls are admitted through the pipeline: the SDK's own client sends, but only as many at a
time as the provider's gate allows (async calls wait on the loop, sync calls in their threads), the time
queued is recorded apart from the latency, and enforce mode defers low severities when the queue is long."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Self

import openai
import pytest
from loopback import Reply

from cascadeflow import harness
from cascadeflow.budget.queue import DeferredQueue
from cascadeflow.errors import CallDeferred
from cascadeflow.providers.admission import Admission, AdmissionLimits, DeferPolicy

MSGS = [{"role": "user", "content": "disk full on db-1"}]


class PeakWatch:
    """Notes, each time a slot is given back, how many calls held one and how many waited: two calls ever
    in flight together show up at the first one's release."""

    def __init__(self, gate):
        self.gate = gate
        self.peak = 0
        self.queued_seen = 0
        self._release = gate.release

    def _noting_release(self) -> None:
        self.peak = max(self.peak, self.gate.in_flight)
        self.queued_seen = max(self.queued_seen, self.gate.queued)
        self._release()

    def __enter__(self) -> Self:
        self.gate.release = self._noting_release
        return self

    def __exit__(self, *exc: object) -> None:
        self.gate.release = self._release


def _gated(limit: int, **kw) -> Admission:
    admission = Admission(default=AdmissionLimits(max_in_flight=limit), **kw)
    harness.default_runtime().admission = admission
    return admission


async def test_async_sdk_calls_wait_for_the_providers_gate(openai_server, audit_path):
    openai_server.default = Reply(text="rotate the logs", delay=0.05)
    harness.init(mode="observe", audit=str(audit_path))
    admission = _gated(2)
    client = openai.AsyncOpenAI(base_url=openai_server.base_url, api_key="sk-test", max_retries=0)
    gate = admission.gate("openai", "gpt-4o-mini")
    with PeakWatch(gate) as watch:
        answers = await asyncio.gather(*(client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
                                         for _ in range(8)))
    assert [a.choices[0].message.content for a in answers] == ["rotate the logs"] * 8
    assert watch.peak <= 2 and watch.queued_seen >= 1
    assert gate.in_flight == 0 and len(openai_server.requests) == 8
    harness.reset()  # flushes the audit log
    records = [json.loads(line) for line in audit_path.read_text().splitlines()]
    records = [r for r in records if r["action"] == "allow"]
    queued = [t["queued_ms"] for r in records for t in r["tiers"] if "queued_ms" in t]
    assert len(records) == 8 and queued and all(q > 0 for q in queued)


def test_sync_sdk_calls_from_threads_wait_for_the_providers_gate(openai_server, audit_path):
    openai_server.default = Reply(text="rotate the logs", delay=0.03)
    harness.init(mode="observe", audit=str(audit_path))
    admission = _gated(1)
    client = openai.OpenAI(base_url=openai_server.base_url, api_key="sk-test", max_retries=0)
    gate = admission.gate("openai", "gpt-4o-mini")
    answers: list[str] = []

    def call() -> None:
        answer = client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
        answers.append(answer.choices[0].message.content)

    with PeakWatch(gate) as watch:
        threads = [threading.Thread(target=call) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert answers == ["rotate the logs"] * 5
    assert watch.peak == 1 and gate.in_flight == 0  # one at a time


def test_a_streamed_sdk_call_holds_its_slot_until_the_stream_ends(openai_server, audit_path):
    openai_server.default = Reply(text="one two three", chunk_delay=0.01)
    harness.init(mode="observe", audit=str(audit_path))
    gate = _gated(1).gate("openai", "gpt-4o-mini")
    client = openai.OpenAI(base_url=openai_server.base_url, api_key="sk-test", max_retries=0)
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True)
    assert gate.in_flight == 1
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "one two three" and gate.in_flight == 0


async def test_enforce_mode_defers_an_sdk_call_when_the_queue_is_long(openai_server, audit_path, tmp_path):
    openai_server.default = Reply(text="handled", delay=0.05)
    harness.init(mode="enforce", audit=str(audit_path))
    queue = DeferredQueue(tmp_path / "deferred.sqlite3")
    _gated(1, defer=DeferPolicy(queue, when_queued=1, from_priority=2))  # SDK calls carry no severity: P2
    client = openai.AsyncOpenAI(base_url=openai_server.base_url, api_key="sk-test", max_retries=0)

    def call():
        return client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)

    first = asyncio.create_task(call())  # takes the slot
    await asyncio.sleep(0.02)
    second = asyncio.create_task(call())  # queues behind it
    await asyncio.sleep(0.02)
    with pytest.raises(CallDeferred) as deferred:
        await call()
    assert (await first).choices[0].message.content == "handled"
    assert (await second).choices[0].message.content == "handled"
    assert len(openai_server.requests) == 2
    [item] = queue.list()
    assert item.id == deferred.value.item_id and item.payload["messages"][0]["content"] == MSGS[0]["content"]


def test_observe_mode_never_defers_an_sdk_call(openai_server, audit_path, tmp_path):
    openai_server.default = Reply(text="handled", delay=0.02)
    harness.init(mode="observe", audit=str(audit_path))
    queue = DeferredQueue(tmp_path / "deferred.sqlite3")
    _gated(1, defer=DeferPolicy(queue, when_queued=1, from_priority=0))
    client = openai.OpenAI(base_url=openai_server.base_url, api_key="sk-test", max_retries=0)
    results: list[object] = []

    def call() -> None:
        try:
            results.append(client.chat.completions.create(model="gpt-4o-mini", messages=MSGS))
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            results.append(exc)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [type(r).__name__ for r in results] == ["ChatCompletion"] * 4 and len(queue) == 0
