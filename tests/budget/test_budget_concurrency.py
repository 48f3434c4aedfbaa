"""1,000 concurrent calls in one process against a $1.00 budget: settled spend stays within it, and every
admitted call had room for its worst case at the moment it was admitted.

The asyncio variant goes through the real pipeline (`Runtime.attempt`) with a priced ModelConfig, so the
worst case and the actual cost are the pipeline's own arithmetic; the thread and direct variants hit the
ledger itself."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from budget_support import LedgerFactory

from cascadeflow.budget.backends.memory import MemoryLedger
from cascadeflow.budget.ledger import BaseLedger, BudgetState, Reservation, Settlement
from cascadeflow.errors import BudgetExceeded
from cascadeflow.messages import Request, Response, Usage, build_request
from cascadeflow.models import ModelConfig
from cascadeflow.pricing import to_micro_usd
from cascadeflow.runtime.pipeline import Charge, Runtime
from cascadeflow.testing import ScriptedProvider

BUDGET = Charge("global:day:2026-11-24", 1_000_000)  # $1.00
CALLS = 1000


@dataclass
class Admission:
    reservation_id: str
    amount: int
    after: BudgetState  # the key's state right after this reservation, read atomically with it


@dataclass
class AuditedLedger:
    """Wraps a ledger so each reservation is observed together with the state it produced (one lock
    around both): proof that every admitted call had room for its whole worst case when admitted."""

    inner: BaseLedger
    admissions: list[Admission] = field(default_factory=list)
    refusals: list[Admission] = field(default_factory=list)
    settled: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reserve(self, rid: str, charges: Sequence[Charge], amount: int, lease: float) -> Reservation:
        with self._lock:
            try:
                result = self.inner.reserve(rid, charges, amount, lease)
            except BudgetExceeded:
                self.refusals.append(Admission(rid, amount, self.inner.state(BUDGET.key)))
                raise
            self.admissions.append(Admission(rid, amount, self.inner.state(BUDGET.key)))
            return result

    def settle(self, rid: str, actual: int) -> Settlement:
        with self._lock:
            result = self.inner.settle(rid, actual)
            self.settled[rid] = actual
            return result

    def remaining(self, charge: Charge) -> int:
        return self.inner.remaining(charge)


def assert_never_overshot(ledger: AuditedLedger, refused: int) -> None:
    final = ledger.inner.state(BUDGET.key)
    assert final.reserved == 0
    assert final.spent <= BUDGET.limit_micro
    assert final.spent == sum(ledger.settled.values())
    for admission in ledger.admissions:
        assert admission.after.spent + admission.after.reserved <= BUDGET.limit_micro
    for refusal in ledger.refusals:  # no false refusals: each refused call really did not fit
        assert refusal.after.spent + refusal.after.reserved + refusal.amount > BUDGET.limit_micro
    assert len(ledger.admissions) + len(ledger.refusals) == CALLS
    assert len(ledger.refusals) == refused
    assert ledger.admissions and refused  # the budget was really contended


async def test_asyncio_calls_through_the_pipeline_never_overshoot() -> None:
    rng = random.Random(4)
    model = ModelConfig("openai/gpt-4o-mini", input_price_per_million=1.0, output_price_per_million=100.0)

    def reply(request: Request) -> Response:
        out = rng.randint(1, (request.max_tokens or 1) - 1)  # an actual cost below the worst case
        return Response(content="ok", model=request.model, provider="fake",
                        usage=Usage(input_tokens=rng.randint(1, 20), output_tokens=out))

    provider = ScriptedProvider(default=reply, delay=0.005)
    ledger = AuditedLedger(MemoryLedger())
    runtime = Runtime(ledger=ledger, resolve_provider=provider.resolver())
    refused = 0
    worst_cases: list[Decimal] = []

    starts = [rng.random() * 0.05 for _ in range(CALLS)]  # arrivals overlap in-flight calls and settles

    async def one(i: int) -> None:
        nonlocal refused
        await asyncio.sleep(starts[i])
        request = build_request(f"incident {i}: disk full on db-{i}", max_tokens=rng.randint(100, 490))
        call = runtime.new_call(charges=[BUDGET])
        try:
            _, record = await runtime.attempt(model, request, call)
        except BudgetExceeded as exc:
            assert exc.key == BUDGET.key
            refused += 1
            return
        worst_cases.append(record.reserved_usd)
        assert record.cost < record.reserved_usd

    await asyncio.gather(*(one(i) for i in range(CALLS)))
    assert_never_overshot(ledger, refused)
    assert min(worst_cases) >= Decimal("0.01") and max(worst_cases) <= Decimal("0.05")
    assert sorted(a.amount for a in ledger.admissions) == sorted(to_micro_usd(w) for w in worst_cases)


def _direct_call(ledger: AuditedLedger, i: int, stream: int) -> bool:
    rng = random.Random(stream * 100_000 + i)
    worst = rng.randint(10_000, 50_000)
    rid = f"call-{i}"
    try:
        ledger.reserve(rid, [BUDGET], worst, 60)
    except BudgetExceeded:
        return False
    ledger.settle(rid, rng.randint(0, worst - 1))
    return True


@pytest.mark.backends("memory", "sqlite")
def test_threads_against_the_ledger_never_overshoot(make_ledger: LedgerFactory) -> None:
    ledger = AuditedLedger(make_ledger())
    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(lambda i: _direct_call(ledger, i, 1), range(CALLS)))
    assert_never_overshot(ledger, results.count(False))


@pytest.mark.backends("memory", "sqlite")
def test_threads_without_the_audit_lock_never_overshoot(make_ledger: LedgerFactory) -> None:
    """The audit wrapper serialises calls; here the ledger's own atomicity is all there is."""
    ledger = make_ledger()
    rng = random.Random(7)
    plan = [(w, rng.randint(0, w - 1)) for w in (rng.randint(10_000, 50_000) for _ in range(CALLS))]
    barrier = threading.Barrier(16)

    def worker(part: int) -> int:
        barrier.wait()
        spent = 0
        for i in range(part, CALLS, 16):
            worst, actual = plan[i]
            try:
                ledger.reserve(f"t{i}", [BUDGET], worst, 60)
            except BudgetExceeded:
                continue
            ledger.settle(f"t{i}", actual)
            spent += actual
        return spent

    with ThreadPoolExecutor(16) as pool:
        total = sum(pool.map(worker, range(16)))
    final = ledger.state(BUDGET.key)
    assert (final.spent, final.reserved) == (total, 0)
    assert 0 < final.spent <= BUDGET.limit_micro


async def test_asyncio_tasks_with_async_twins_never_overshoot() -> None:
    ledger = MemoryLedger()
    rng = random.Random(11)
    admitted_spend: list[int] = []

    starts = [rng.random() * 0.05 for _ in range(CALLS)]

    async def one(i: int) -> None:
        worst = rng.randint(10_000, 50_000)
        actual = rng.randint(0, worst - 1)
        await asyncio.sleep(starts[i])
        try:
            await ledger.areserve(f"a{i}", [BUDGET], worst, 60)
        except BudgetExceeded:
            return
        await asyncio.sleep(0)
        await ledger.asettle(f"a{i}", actual)
        admitted_spend.append(actual)

    await asyncio.gather(*(one(i) for i in range(CALLS)))
    final = ledger.state(BUDGET.key)
    assert (final.spent, final.reserved) == (sum(admitted_spend), 0)
    assert 0 < final.spent <= BUDGET.limit_micro
