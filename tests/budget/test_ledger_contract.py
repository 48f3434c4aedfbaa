"""The ledger contract, run against every backend: reserve / settle / release / lease semantics."""

from __future__ import annotations

import logging

import pytest
from budget_support import FakeClock, LedgerFactory

from cascadeflow.errors import BudgetExceeded
from cascadeflow.runtime.pipeline import Charge

DAY = Charge("user:alice:day:2026-11-24", 1_000_000)
MONTH = Charge("user:alice:month:2026-11", 3_000_000)
GLOBAL = Charge("global:day:2026-11-24", 10_000_000)


def test_reserve_holds_the_amount_on_every_key(make_ledger: LedgerFactory) -> None:
    ledger = make_ledger()
    result = ledger.reserve("r1", [DAY, MONTH, GLOBAL], 250_000, 60)
    assert result.status == "held" and result.amount_micro == 250_000
    for charge in (DAY, MONTH, GLOBAL):
        state = ledger.state(charge.key)
        assert (state.spent, state.reserved) == (0, 250_000)
    assert ledger.remaining(DAY) == 750_000


def test_reservation_that_fits_exactly_is_admitted(make_ledger: LedgerFactory) -> None:
    ledger = make_ledger()
    ledger.reserve("a", [DAY], 600_000, 60)
    ledger.reserve("b", [DAY], 400_000, 60)
    assert ledger.remaining(DAY) == 0


def test_refusal_names_the_first_key_that_does_not_fit_and_reserves_nothing(make_ledger: LedgerFactory) -> None:
    ledger = make_ledger()
    tight = Charge("agent:triage:day:2026-11-24", 100_000)
    ledger.reserve("before", [tight], 60_000, 60)
    with pytest.raises(BudgetExceeded) as info:
        ledger.reserve("r2", [GLOBAL, tight, DAY], 50_000, 60)
    err = info.value
    assert err.key == tight.key
    assert err.limit_usd == pytest.approx(0.1)
    assert err.requested_usd == pytest.approx(0.05)
    assert err.remaining_usd == pytest.approx(0.04)
    assert ledger.state(GLOBAL.key).reserved == 0
    assert ledger.state(DAY.key).reserved == 0
    assert ledger.state(tight.key).reserved == 60_000
    assert ledger.settle("r2", 0).status == "unknown"  # the refused id was never recorded


def test_re_reserving_an_id_changes_nothing(make_ledger: LedgerFactory) -> None:
    ledger = make_ledger()
    ledger.reserve("r1", [DAY], 300_000, 60)
    again = ledger.reserve("r1", [DAY], 300_000, 60)
    assert again.status == "existing" and again.amount_micro == 300_000
    assert ledger.state(DAY.key).reserved == 300_000


def test_settle_turns_the_reservation_into_actual_spend(make_ledger: LedgerFactory) -> None:
    ledger = make_ledger()
    ledger.reserve("r1", [DAY, MONTH], 300_000, 60)
    result = ledger.settle("r1", 120_000)
    assert result.status == "settled" and result.accepted
    for charge in (DAY, MONTH):
        state = ledger.state(charge.key)
        assert (state.spent, state.reserved) == (120_000, 0)
    assert ledger.remaining(DAY) == 880_000


def test_settle_above_the_reservation_records_the_real_figure(make_ledger: LedgerFactory) -> None:
    ledger = make_ledger()
    ledger.reserve("r1", [DAY], 100_000, 60)
    ledger.settle("r1", 130_000)
    state = ledger.state(DAY.key)
    assert (state.spent, state.reserved) == (130_000, 0)


def test_release_gives_the_whole_reservation_back(make_ledger: LedgerFactory) -> None:
    ledger = make_ledger()
    ledger.reserve("r1", [DAY], 900_000, 60)
    assert ledger.release("r1").status == "settled"
    state = ledger.state(DAY.key)
    assert (state.spent, state.reserved) == (0, 0)
    ledger.reserve("r2", [DAY], 1_000_000, 60)


def test_the_limit_travels_with_each_call(make_ledger: LedgerFactory) -> None:
    ledger = make_ledger()
    ledger.reserve("r1", [Charge("k", 100)], 80, 60)
    with pytest.raises(BudgetExceeded):
        ledger.reserve("r2", [Charge("k", 100)], 30, 60)
    ledger.reserve("r3", [Charge("k", 200)], 30, 60)  # a caller with a larger limit on the same key fits
    assert ledger.state("k").reserved == 110


def test_zero_amount_reservation_is_allowed_even_at_the_limit(make_ledger: LedgerFactory) -> None:
    ledger = make_ledger()
    ledger.reserve("full", [DAY], 1_000_000, 60)
    assert ledger.reserve("free", [DAY], 0, 60).status == "held"
    assert ledger.settle("free", 0).status == "settled"


def test_expired_lease_is_charged_its_worst_case_on_the_next_reserve(make_ledger: LedgerFactory,
                                                                    clock: FakeClock) -> None:
    ledger = make_ledger(clock=clock)
    ledger.reserve("crashed", [DAY], 400_000, 30)
    clock.advance(29)
    assert ledger.state(DAY.key).reserved == 400_000
    clock.advance(2)
    # its holder went silent after perhaps sending: whether the provider billed it is unknown
    assert ledger.reserve("after", [DAY], 600_000, 30).status == "held"
    assert ledger.counters["expired_charged"] == 1
    state = ledger.state(DAY.key)
    assert (state.spent, state.reserved) == (400_000, 600_000)
    with pytest.raises(BudgetExceeded):
        ledger.reserve("blocked", [DAY], 1, 30)


def test_state_and_sweep_charge_expired_leases(make_ledger: LedgerFactory, clock: FakeClock) -> None:
    ledger = make_ledger(clock=clock)
    for i in range(3):
        ledger.reserve(f"r{i}", [DAY, MONTH], 100_000, 10 + i)
    clock.advance(11)
    assert ledger.sweep() == 2
    assert (ledger.state(DAY.key).spent, ledger.state(DAY.key).reserved) == (200_000, 100_000)
    clock.advance(1)
    assert (ledger.state(MONTH.key).spent, ledger.state(MONTH.key).reserved) == (300_000, 0)


def test_settle_after_the_lease_expired_still_records_the_cost(
        make_ledger: LedgerFactory, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    ledger = make_ledger(clock=clock)
    ledger.reserve("slow", [DAY], 500_000, 10)
    clock.advance(11)
    assert (ledger.state(DAY.key).spent, ledger.state(DAY.key).reserved) == (500_000, 0)  # the worst case
    with caplog.at_level(logging.WARNING, logger="cascadeflow.budget.ledger"):
        result = ledger.settle("slow", 200_000)
    assert result.status == "late" and result.accepted
    assert "slow" in caplog.text and "expired" in caplog.text
    state = ledger.state(DAY.key)  # the real cost replaced the worst case
    assert (state.spent, state.reserved) == (200_000, 0)
    assert ledger.settle("slow", 200_000).status == "duplicate"
    assert ledger.state(DAY.key).spent == 200_000


async def test_async_twins_follow_the_same_contract(make_ledger: LedgerFactory) -> None:
    ledger = make_ledger()
    assert (await ledger.areserve("r1", [DAY], 400_000, 60)).status == "held"
    with pytest.raises(BudgetExceeded):
        await ledger.areserve("r2", [DAY], 700_000, 60)
    assert (await ledger.asettle("r1", 100_000)).status == "settled"
    assert (await ledger.astate(DAY.key)).spent == 100_000
    assert await ledger.aremaining(DAY) == 900_000
    await ledger.areserve("r3", [DAY], 10, 60)
    assert (await ledger.arelease("r3")).status == "settled"
    assert (await ledger.astates([DAY.key, MONTH.key]))[MONTH.key].spent == 0
    assert await ledger.asweep() == 0


@pytest.mark.backends("sqlite", "redis", "postgres")
def test_two_clients_of_one_store_share_the_budget(make_ledger: LedgerFactory) -> None:
    first, second = make_ledger(), make_ledger()
    first.reserve("r1", [DAY], 700_000, 60)
    with pytest.raises(BudgetExceeded):
        second.reserve("r2", [DAY], 400_000, 60)
    assert second.settle("r1", 650_000).status == "settled"
    assert first.settle("r1", 650_000).status == "duplicate"
    assert first.state(DAY.key).spent == 650_000


@pytest.mark.backends("memory", "sqlite", "postgres")  # Redis drops finished reservations with EXPIRE itself
def test_finished_reservations_are_forgotten_after_their_retention(make_ledger: LedgerFactory,
                                                                   clock: FakeClock) -> None:
    ledger = make_ledger(clock=clock, retention_seconds=3600)
    ledger.reserve("done", [DAY], 100, 60)
    ledger.settle("done", 100)
    ledger.reserve("open", [DAY], 200, 10 * 86400)
    clock.advance(1800)
    assert ledger.purge() == 0
    clock.advance(3600)
    assert ledger.purge() == 1
    assert ledger.settle("done", 100).status == "unknown"  # forgotten: reported, not double-counted
    assert ledger.settle("open", 150).status == "settled"  # a held reservation is never purged
    assert ledger.state(DAY.key).spent == 250


@pytest.mark.backends("memory")
def test_reserve_purges_hourly_on_its_own(make_ledger: LedgerFactory, clock: FakeClock) -> None:
    ledger = make_ledger(clock=clock, retention_seconds=60)
    ledger.reserve("old", [DAY], 1, 1)
    ledger.settle("old", 1)
    clock.advance(3601)
    ledger.reserve("new", [DAY], 1, 60)
    assert ledger.counters["purged"] == 1


def test_redis_prefix_becomes_a_cluster_hash_tag() -> None:
    from cascadeflow.budget.backends.redis import RedisLedger

    assert RedisLedger.from_url("redis://127.0.0.1:1/0?prefix=billing").prefix == "{billing}:"
    assert RedisLedger.from_url("redis://127.0.0.1:1/0?prefix={a}-b").prefix == "{a}-b:"
    assert RedisLedger.from_url("redis://127.0.0.1:1/0").prefix == "{cascadeflow}:"


def test_a_key_named_twice_is_reserved_once_against_the_tighter_limit(make_ledger: LedgerFactory) -> None:
    ledger = make_ledger()
    with pytest.raises(BudgetExceeded) as info:
        ledger.reserve("r1", [Charge("k", 1_000), GLOBAL, Charge("k", 300)], 400, 60)
    assert info.value.key == "k" and info.value.limit_usd == pytest.approx(0.0003)
    ledger.reserve("r2", [Charge("k", 1_000), Charge("k", 500)], 400, 60)
    assert ledger.state("k").reserved == 400
    ledger.settle("r2", 100)
    assert ledger.state("k").spent == 100
