"""Priority under pressure: with a DeferPolicy, a low-severity call that meets a long admission queue is stored
in the durable deferred queue instead of waiting (nothing sent, nothing charged), high severities still
queue and go first, and every deferred call can be drained and answered later: none is lost."""

from __future__ import annotations

import asyncio
import time

import pytest
from loopback import Reply

from cascadeflow.budget.backends.memory import MemoryLedger
from cascadeflow.budget.queue import DeferredQueue
from cascadeflow.cascade.agent import CascadeAgent
from cascadeflow.errors import CallDeferred, ConfigurationError
from cascadeflow.models import ModelConfig
from cascadeflow.providers.admission import Admission, AdmissionLimits, DeferPolicy, Gate
from cascadeflow.providers.http import CircuitBreakers, HttpOptions
from cascadeflow.providers.openai_chat import OpenAIChat
from cascadeflow.runtime.budgets import call_options
from cascadeflow.runtime.pipeline import CallOptions, Charge, Runtime
from cascadeflow.testing import capture_audit


def far() -> float:
    return time.monotonic() + 3600.0


@pytest.mark.parametrize("bad", [{"when_queued": 0}, {"from_priority": -1}, {"from_priority": True}])
def test_an_invalid_defer_policy_is_refused_at_construction(tmp_path, bad):
    with pytest.raises(ConfigurationError):
        DeferPolicy(DeferredQueue(tmp_path / "q.sqlite3"), **bad)


def test_a_defer_policy_needs_a_queue():
    with pytest.raises(ConfigurationError, match="DeferredQueue"):
        DeferPolicy(queue="deferred.sqlite3")


async def test_a_low_severity_call_meeting_a_long_queue_is_deferred_and_a_high_one_waits(tmp_path):
    queue = DeferredQueue(tmp_path / "q.sqlite3")
    gate = Gate(limits=AdmissionLimits(max_in_flight=1), defer=DeferPolicy(queue, when_queued=2, from_priority=3))
    await gate.acquire(priority=2, deadline=far())  # the only slot
    waiting = [asyncio.create_task(gate.acquire(priority=2, deadline=far())) for _ in range(2)]
    await asyncio.sleep(0)
    with pytest.raises(CallDeferred) as deferred:
        await gate.acquire(priority=3, deadline=far(), what="openai/m")
    assert deferred.value.queue is queue and deferred.value.queued == 2
    urgent = asyncio.create_task(gate.acquire(priority=0, deadline=far()))
    low_not_deferrable = asyncio.create_task(gate.acquire(priority=4, deadline=far(), may_defer=False))
    await asyncio.sleep(0)
    assert gate.queued == 4  # P0 queued (first in line), and the call that may not be deferred waits too
    gate.release()
    await asyncio.wait_for(urgent, 5)
    assert not any(t.done() for t in waiting)
    for _ in range(3):
        gate.release()
    await asyncio.wait_for(asyncio.gather(*waiting, low_not_deferrable), 5)
    assert len(queue) == 0  # the gate only refuses; the pipeline stores the call


async def test_a_storm_defers_low_severities_durably_and_every_deferred_call_is_answered_later(
        openai_server, tmp_path):
    openai_server.default = Reply(text="handled", usage={"input": 10, "output": 2}, delay=0.03)
    queue = DeferredQueue(tmp_path / "deferred.sqlite3")
    admission = Admission(default=AdmissionLimits(max_in_flight=2), defer=DeferPolicy(queue, when_queued=4))
    model = ModelConfig("gpt-4o-mini", provider="openai", base_url=openai_server.base_url, api_key="sk-test")
    chat = OpenAIChat.from_config(model, http=HttpOptions(admission=admission, breakers=CircuitBreakers()))
    ledger = MemoryLedger()
    runtime = Runtime(ledger=ledger, resolve_provider=lambda cfg: chat)
    audit = capture_audit(runtime)
    agent = CascadeAgent(models=[model], runtime=runtime)
    charge = Charge("test:defer:storm", 10_000_000)
    severities = ["P0", "P1", "P2", "P3"]

    async def one(i: int):
        with call_options(CallOptions(charges=(charge,))):
            return await agent.run(f"alert {i}", max_tokens=20, metadata={"severity": severities[i % 4]})

    results = await asyncio.gather(*(one(i) for i in range(40)), return_exceptions=True)
    deferred = [r for r in results if isinstance(r, CallDeferred)]
    others = [r for r in results if isinstance(r, BaseException) and not isinstance(r, CallDeferred)]
    assert others == []
    assert deferred, "a queue of 4 behind 2 in flight must defer some P3 call"
    assert all(r.priority >= 3 and r.item_id for r in deferred)
    for i, r in enumerate(results):
        if severities[i % 4] != "P3":
            assert not isinstance(r, BaseException) and r.content == "handled"
    assert len(openai_server.requests) == 40 - len(deferred)  # nothing deferred was sent

    items = queue.list()
    assert sorted(item.id for item in items) == sorted(r.item_id for r in deferred)
    deferred_records = [rec for rec in audit.records if rec.error and "CallDeferred" in rec.error]
    assert sorted(rec.request_id for rec in deferred_records) == sorted(item.payload["request_id"] for item in items)
    assert all(rec.cost_usd == 0 for rec in deferred_records)
    assert all(item.payload["metadata"]["severity"] == "P3" for item in items)
    assert ledger.state(charge.key).reserved == 0

    answers = []

    async def replay(item):
        result = await agent.run(item.payload["messages"], max_tokens=item.payload["max_tokens"],
                                 metadata=item.payload["metadata"])
        answers.append(result.content)

    report = await queue.adrain(replay)
    assert len(report.done) == len(deferred) and not report.failed
    assert answers == ["handled"] * len(deferred) and len(queue) == 0
