"""The async pipeline calls a blocking ledger (SQLite) in a worker thread, keeps the memory ledger inline, gives
back the reservation of a call cancelled while reserving, and reports the budget left read with the settle."""

from __future__ import annotations

import asyncio
import threading

from cascadeflow.budget.backends.memory import MemoryLedger
from cascadeflow.budget.backends.sqlite import SqliteLedger
from cascadeflow.messages import build_request
from cascadeflow.models import ModelConfig
from cascadeflow.runtime.pipeline import Charge, Runtime
from cascadeflow.testing import FakeProvider, capture_audit

MODEL = ModelConfig(name="gpt-4o-mini", provider="openai")
LIMIT = 10_000_000


class ThreadRecordingLedger(SqliteLedger):
    """A SQLite ledger that notes the thread of each reserve and settle."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.threads: list[int] = []

    def reserve(self, *args, **kw):
        self.threads.append(threading.get_ident())
        return super().reserve(*args, **kw)

    def settle(self, *args, **kw):
        self.threads.append(threading.get_ident())
        return super().settle(*args, **kw)


class SlowReserveLedger(SqliteLedger):
    """A SQLite ledger whose reserve waits until released (to cancel the caller meanwhile)."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.entered = threading.Event()
        self.go_on = threading.Event()
        self.made = threading.Event()

    def reserve(self, *args, **kw):
        self.entered.set()
        self.go_on.wait(10)
        try:
            return super().reserve(*args, **kw)
        finally:
            self.made.set()


async def test_a_sqlite_ledger_is_called_outside_the_event_loop_thread(tmp_path):
    ledger = ThreadRecordingLedger(tmp_path / "ledger.db")
    runtime = Runtime(ledger=ledger, resolve_provider=FakeProvider("fine").resolver())
    call = runtime.new_call(charges=[Charge("test:offload:thread", LIMIT)])
    await runtime.attempt(MODEL, build_request("hi", max_tokens=50), call)
    assert len(ledger.threads) == 2
    assert threading.get_ident() not in ledger.threads


async def test_the_memory_ledger_is_called_inline():
    class Recording(MemoryLedger):
        def __init__(self):
            super().__init__()
            self.threads: list[int] = []

        def reserve(self, *args, **kw):
            self.threads.append(threading.get_ident())
            return super().reserve(*args, **kw)

    ledger = Recording()
    runtime = Runtime(ledger=ledger, resolve_provider=FakeProvider("fine").resolver())
    call = runtime.new_call(charges=[Charge("test:offload:inline", LIMIT)])
    await runtime.attempt(MODEL, build_request("hi", max_tokens=50), call)
    assert ledger.threads == [threading.get_ident()]


async def test_a_call_cancelled_while_reserving_gives_its_reservation_back(tmp_path):
    ledger = SlowReserveLedger(tmp_path / "ledger.db")
    provider = FakeProvider("never")
    runtime = Runtime(ledger=ledger, resolve_provider=provider.resolver())
    charge = Charge("test:offload:cancel", LIMIT)
    call = runtime.new_call(charges=[charge])
    task = asyncio.create_task(runtime.attempt(MODEL, build_request("hi", max_tokens=50), call))
    await asyncio.to_thread(ledger.entered.wait, 10)
    task.cancel()
    await asyncio.sleep(0)
    ledger.go_on.set()
    try:
        await task
    except asyncio.CancelledError:
        pass
    else:
        raise AssertionError("the attempt was not cancelled")
    await asyncio.to_thread(ledger.made.wait, 10)  # the reservation lands in its thread after the cancel
    for _ in range(500):  # ... and is then given back in another
        if ledger.state(charge.key).reserved == 0:
            break
        await asyncio.sleep(0.01)
    assert ledger.state(charge.key).reserved == 0 and ledger.state(charge.key).spent == 0
    assert provider.requests == []


async def test_the_record_reports_the_budget_left_after_the_settlement(tmp_path):
    ledger = SqliteLedger(tmp_path / "ledger.db")
    runtime = Runtime(ledger=ledger, resolve_provider=FakeProvider("fine").resolver())
    audit = capture_audit(runtime)
    charge = Charge("test:offload:remaining", LIMIT)
    call = runtime.new_call(charges=[charge])
    response, _ = await runtime.attempt(MODEL, build_request("hi", max_tokens=50), call)
    runtime.finish(call, action="allow", model_selected=MODEL.id, response=response)
    left = ledger.remaining(charge)
    assert left < LIMIT
    assert audit.records[0].budget_remaining == left / 1_000_000
