"""Property test: any sequence of reserve / settle / clock jumps gives exactly what a plain reference model
of the contract predicts (admit or refuse, settle status, spent and reserved per key), and no admission
ever leaves a budget with spent + reserved above its limit."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from budget_support import POSTGRES_URL, REDIS_URL, FakeClock, drop_backend, require_postgres, require_redis
from hypothesis import given, settings
from hypothesis import strategies as st

from cascadeflow.budget import BaseLedger, open_ledger
from cascadeflow.budget.backends.memory import MemoryLedger
from cascadeflow.budget.backends.sqlite import SqliteLedger
from cascadeflow.errors import BudgetExceeded
from cascadeflow.runtime.pipeline import Charge

KEYS = [Charge("a", 1_000), Charge("b", 1_500), Charge("c", 700)]

operation = st.one_of(
    st.tuples(st.just("reserve"), st.integers(0, 7), st.sets(st.integers(0, 2), min_size=1),
              st.integers(0, 800), st.sampled_from([5.0, 50.0])),
    st.tuples(st.just("settle"), st.integers(0, 7), st.integers(0, 900)),
    st.tuples(st.just("advance"), st.sampled_from([1.0, 10.0, 60.0])),
)


@dataclass
class Model:
    """The contract in a few lines, with no concurrency to get wrong."""

    reservations: dict[str, list] = field(default_factory=dict)  # id -> [keys, amount, expires, status]
    spent: dict[str, int] = field(default_factory=lambda: {c.key: 0 for c in KEYS})

    def reserved(self, key: str) -> int:
        return sum(r[1] for r in self.reservations.values() if r[3] == "held" and key in r[0])

    def expire(self, now: float) -> None:
        for r in self.reservations.values():
            if r[3] == "held" and r[2] <= now:  # its holder went silent: charged the worst case reserved
                r[3] = "expired"
                for key in r[0]:
                    self.spent[key] += r[1]

    def reserve(self, rid: str, charges: list[Charge], amount: int, expires: float) -> str:
        if rid in self.reservations:
            return "existing"
        if any(self.spent[c.key] + self.reserved(c.key) + amount > c.limit_micro for c in charges):
            return "exceeded"
        self.reservations[rid] = [[c.key for c in charges], amount, expires, "held"]
        return "held"

    def settle(self, rid: str, actual: int) -> str:
        found = self.reservations.get(rid)
        if found is None:
            return "unknown"
        if found[3] == "settled":
            return "duplicate"
        status = "settled" if found[3] == "held" else "late"
        for key in found[0]:  # a late settle replaces the worst case charged at expiry
            self.spent[key] += actual - (found[1] if status == "late" else 0)
        found[3] = "settled"
        return status


def check_sequence(ledger: BaseLedger, clock: FakeClock, ops: list[tuple]) -> None:
    model = Model()
    for op in ops:
        if op[0] == "advance":
            clock.advance(op[1])
            continue
        model.expire(clock())
        rid = f"r{op[1]}"
        if op[0] == "reserve":
            charges = [KEYS[i] for i in sorted(op[2])]
            expected = model.reserve(rid, charges, op[3], clock() + op[4])
            try:
                got = ledger.reserve(rid, charges, op[3], op[4]).status
            except BudgetExceeded:
                got = "exceeded"
            assert got == expected
        else:
            assert ledger.settle(rid, op[2]).status == model.settle(rid, op[2])
        for charge in KEYS:
            state = ledger.state(charge.key)
            assert (state.spent, state.reserved) == (model.spent[charge.key], model.reserved(charge.key))
            if op[0] == "reserve" and expected == "held" and charge in charges:
                assert state.spent + state.reserved <= charge.limit_micro


@settings(max_examples=200, deadline=None)
@given(st.lists(operation, max_size=40))
def test_memory_ledger_matches_the_model(ops: list[tuple]) -> None:
    clock = FakeClock()
    check_sequence(MemoryLedger(clock=clock), clock, ops)


@settings(max_examples=30, deadline=None)
@given(st.lists(operation, max_size=25))
def test_sqlite_ledger_matches_the_model(tmp_path_factory, ops: list[tuple]) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    ledger = SqliteLedger(tmp_path_factory.mktemp("prop") / "ledger.db", clock=clock)
    try:
        check_sequence(ledger, clock, ops)
    finally:
        ledger.close()


def _on_server(url_for: Callable[[str], str], ops: list[tuple]) -> None:
    clock = FakeClock()
    url = url_for(uuid.uuid4().hex[:12])
    ledger = open_ledger(url, clock=clock)
    try:
        check_sequence(ledger, clock, ops)
    finally:
        ledger.close()
        drop_backend(url)


@pytest.mark.redis
@settings(max_examples=15, deadline=None)
@given(st.lists(operation, max_size=25))
def test_redis_ledger_matches_the_model(ops: list[tuple]) -> None:
    require_redis()
    _on_server(lambda tag: f"{REDIS_URL}?prefix={{cfprop-{tag}}}", ops)


@pytest.mark.postgres
@settings(max_examples=15, deadline=None)
@given(st.lists(operation, max_size=25))
def test_postgres_ledger_matches_the_model(ops: list[tuple]) -> None:
    require_postgres()
    _on_server(lambda tag: f"{POSTGRES_URL}?schema=cfprop_{tag}", ops)
