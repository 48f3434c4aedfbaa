"""The ledger contract: reserve a worst case on every budget at once, settle it to the real cost, lease it.

Every backend (memory, SQLite, Redis, PostgreSQL) subclasses `BaseLedger` and implements four primitives
(`_reserve`, `_settle`, `_states`, `_sweep`); this module owns what they share: input validation (before
any money moves), the fail-closed / fail-open decision with a re-probe back-off, the async twins, and
`open_ledger(url)`, which picks a backend by URL scheme.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from cascadeflow.budget.windows import key_window_end
from cascadeflow.errors import BudgetBackendUnavailable, BudgetExceeded, ConfigurationError
from cascadeflow.pricing import from_micro_usd

log = logging.getLogger(__name__)

Clock = Callable[[], float]  # seconds since the epoch, like time.time
T = TypeVar("T")

BACKOFF_START = 0.05  # seconds a dead store is not re-probed after a failure (doubles per failure)
BACKOFF_MAX = 1.0
# The largest limit and amount a ledger takes: $1e12. Sums of three such figures stay inside the signed 64-bit
# integers the stores keep (PostgreSQL bigint, Redis integers), so no store fails on a figure we accepted.
MAX_MICRO = 10**18
RETENTION_SECONDS = 7 * 86400  # finished reservations are kept this long so late duplicates stay recognised
PURGE_EVERY = 3600.0  # seconds between purges of finished reservations older than the retention


@dataclass(frozen=True, slots=True)
class Charge:
    """One budget a call is charged against: a ledger key and its limit in micro-USD."""

    key: str
    limit_micro: int


def key_expiry(key: str, idle_expiry: float) -> float:
    """When a budget key may be forgotten once nothing is held on it: after its calendar window plus a grace
    (`...:day:2026-11-24`), and never before `idle_expiry` (its last lease plus the retention), which alone
    decides for a key without a window (`run:...`, `session:...`)."""
    return max(idle_expiry, key_window_end(key) or 0.0)


@dataclass(frozen=True, slots=True)
class BudgetState:
    """One key's totals in micro-USD; `reserved` counts reservations still held (unexpired leases)."""

    key: str
    spent: int = 0
    reserved: int = 0

    def remaining(self, limit_micro: int) -> int:
        return max(limit_micro - self.spent - self.reserved, 0)


ReserveStatus = Literal["held", "existing", "admitted_unrecorded"]
SettleStatus = Literal["settled", "duplicate", "late", "unknown", "unrecorded"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Reservation:
    """What `reserve` did: `held` (new), `existing` (same id reserved before: nothing changed) or
    `admitted_unrecorded` (store unreachable, fail-open admitted the call without recording it)."""

    reservation_id: str
    amount_micro: int
    status: ReserveStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class Settlement:
    """What `settle` did.

    `settled`: the held reservation became spend. `duplicate`: already settled, nothing changed.
    `late`: the lease had expired (its worst case was charged) but the call did finish, so its real cost
    replaced the worst case. `unknown`: no such reservation; rejected (nothing changed) and logged.
    `unrecorded`: store unreachable under fail-open.
    """

    reservation_id: str
    status: SettleStatus
    actual_micro: int

    @property
    def accepted(self) -> bool:
        return self.status in ("settled", "late")


def validate_reserve(reservation_id: object, charges: object, amount_micro: object, lease_seconds: object) -> None:
    """Raise ConfigurationError for input a ledger must never act on (checked before touching the store)."""
    _check_id(reservation_id)
    if not isinstance(charges, (list, tuple)) or not charges:
        raise ConfigurationError("reserve needs a non-empty list of Charge(key, limit_micro)")
    for charge in charges:
        if not isinstance(charge, Charge):
            raise ConfigurationError(f"reserve expects Charge objects, got {charge!r}")
        check_key(charge.key)
        # a limit of 0 is allowed: it admits only free calls (a zero-amount reservation), e.g. run(budget=0)
        if isinstance(charge.limit_micro, bool) or not isinstance(charge.limit_micro, int) \
                or not 0 <= charge.limit_micro <= MAX_MICRO:
            raise ConfigurationError(
                f"budget {charge.key!r}: limit_micro must be an integer of micro-USD from 0 to {MAX_MICRO} "
                f"($1e12), got {charge.limit_micro!r} (use pricing.usd_to_micro_limit to convert dollars)")
    _check_micro(amount_micro, "amount_micro")
    if isinstance(lease_seconds, bool) or not isinstance(lease_seconds, (int, float)) \
            or not math.isfinite(lease_seconds) or lease_seconds <= 0:
        raise ConfigurationError(f"lease_seconds must be a positive number of seconds, got {lease_seconds!r}")


def merge_charges(charges: Sequence[Charge]) -> list[Charge]:
    """One charge per key (nested budgets can name the same key twice: the tighter limit applies), sorted
    by key so every backend locks keys in one order (no deadlocks)."""
    if len({c.key for c in charges}) == len(charges):  # the usual case: nothing to merge
        return sorted(charges, key=_by_key)
    tightest: dict[str, int] = {}
    for charge in charges:
        tightest[charge.key] = min(charge.limit_micro, tightest.get(charge.key, charge.limit_micro))
    return [Charge(key, tightest[key]) for key in sorted(tightest)]


def _by_key(charge: Charge) -> str:
    return charge.key


def check_key(key: object) -> str:
    if not isinstance(key, str) or not key.strip() or "\n" in key:
        raise ConfigurationError(f"a budget key must be a non-empty single-line string, got {key!r}")
    return key


def _check_id(reservation_id: object) -> None:
    if not isinstance(reservation_id, str) or not reservation_id.strip() or "\n" in reservation_id:
        raise ConfigurationError(f"reservation_id must be a non-empty single-line string, got {reservation_id!r}")


def _check_micro(value: object, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_MICRO:
        raise ConfigurationError(f"{what} must be an integer of micro-USD from 0 to {MAX_MICRO}, got {value!r}")


def exceeded(charge: Charge, state: BudgetState, amount_micro: int) -> BudgetExceeded:
    """The error for a charge that does not fit; every backend builds it the same way."""
    return BudgetExceeded(
        "reservation does not fit the budget", key=charge.key,
        limit_usd=float(from_micro_usd(charge.limit_micro)), requested_usd=float(from_micro_usd(amount_micro)),
        remaining_usd=float(from_micro_usd(state.remaining(charge.limit_micro))),
    )


class BaseLedger:
    """Validation, fail-closed/fail-open with re-probing, and async twins around a backend's primitives.

    Sync methods are the primary API (they run inside synchronous SDK calls); `a*` twins run them in a
    worker thread. `counters` counts fail-open admissions, unknown and late settles, leases that expired (and
    were charged their worst case).

    Lease expiry is decided on one clock: the store's own (Redis `TIME`, PostgreSQL `now()`) for the shared
    stores, so a process whose clock runs ahead cannot expire the others' reservations; the local clock for
    the memory and SQLite ledgers (one machine). An injected `clock` (tests) replaces both.
    """

    url: str = ""
    has_store_clock: bool = False  # the store keeps its own time (a backend then takes now=None)
    blocks: bool = True  # calls wait on a file or a network: the async pipeline runs them in a worker thread

    def __init__(self, *, fail_open: bool = False, clock: Clock | None = None,
                 retention_seconds: float = RETENTION_SECONDS):
        self.fail_open = bool(fail_open)
        self.clock: Clock = clock or time.time
        self._store_time = clock is None and self.has_store_clock
        self.counters: Counter[str] = Counter()
        self.retention_seconds = float(retention_seconds)
        self._retry_at = 0.0
        self._backoff = BACKOFF_START
        self._purged_at = self.clock()

    # primitives a backend implements
    # primitives take `now`: the time leases are judged by, or None when the store's own clock decides
    def _reserve(self, reservation_id: str, charges: Sequence[Charge], amount_micro: int,
                 lease_seconds: float, now: float | None) -> Reservation:
        raise NotImplementedError

    def _settle(self, reservation_id: str, actual_micro: int, now: float | None) -> Settlement:
        raise NotImplementedError

    def _states(self, keys: Sequence[str], now: float | None) -> list[BudgetState]:
        raise NotImplementedError

    def _sweep(self, now: float | None) -> int:
        raise NotImplementedError

    def _now(self) -> float | None:
        return None if self._store_time else self.clock()

    def _purge(self, before: float) -> int:
        """Delete settled/expired reservations whose lease ended before `before` (Redis expires its own)."""
        return 0

    def close(self) -> None:
        """Release connections; the ledger must not be used afterwards."""

    # public sync API
    def reserve(self, reservation_id: str, charges: Sequence[Charge], amount_micro: int,
                lease_seconds: float) -> Reservation:
        """Atomically reserve `amount_micro` on every charge's key, or raise BudgetExceeded and reserve
        nothing. Re-reserving an existing id changes nothing (status `existing`)."""
        validate_reserve(reservation_id, charges, amount_micro, lease_seconds)
        charges = merge_charges(charges)
        now = self._now()
        unrecorded = Reservation(reservation_id=reservation_id, amount_micro=amount_micro,
                                 status="admitted_unrecorded")
        result = self._guarded("reserve", lambda: self._reserve(
            reservation_id, charges, amount_micro, float(lease_seconds), now), unrecorded)
        if self.clock() - self._purged_at >= PURGE_EVERY and result.status != "admitted_unrecorded":
            self.purge()
        return result

    def purge(self) -> int:
        """Forget finished reservations older than `retention_seconds` (reserve runs this hourly); a
        duplicate settle for a purged id is then reported as unknown. Returns how many were removed."""
        now = self._purged_at = self.clock()
        try:
            removed = self._purge(now - self.retention_seconds)
        except BudgetBackendUnavailable as exc:
            log.warning("purging finished reservations failed: %s", exc)
            return 0
        self.counters["purged"] += removed
        return removed

    def settle(self, reservation_id: str, actual_micro: int) -> Settlement:
        """Turn a reservation into spend of `actual_micro` (which may exceed the reservation: the real
        figure is recorded). Idempotent per id; an unknown id is rejected (status `unknown`) and logged."""
        _check_id(reservation_id)
        _check_micro(actual_micro, "actual_micro")
        now = self._now()
        result = self._guarded("settle", lambda: self._settle(reservation_id, actual_micro, now),
                               Settlement(reservation_id=reservation_id, status="unrecorded",
                                          actual_micro=actual_micro))
        if result.status == "unknown":
            self.counters["unknown_settle"] += 1
            log.warning("settle for unknown reservation %r (%d micro-USD) rejected: never reserved here, "
                        "or purged after its retention", reservation_id, actual_micro)
        elif result.status == "late":
            self.counters["late_settle"] += 1
            log.warning("reservation %r settled after its lease expired; its cost (%d micro-USD) replaced the "
                        "worst case charged at expiry", reservation_id, actual_micro)
        return result

    def release(self, reservation_id: str) -> Settlement:
        """Give a reservation back unused (settle at 0)."""
        return self.settle(reservation_id, 0)

    def state(self, key: str) -> BudgetState:
        check_key(key)
        now = self._now()
        return self._guarded("state", lambda: self._states([key], now)[0], BudgetState(key))

    def states(self, keys: Sequence[str]) -> dict[str, BudgetState]:
        """Several keys' states in one store round trip (e.g. for `config.pressure`)."""
        keys = [check_key(k) for k in keys]
        now = self._now()
        found = self._guarded("state", lambda: self._states(keys, now), [BudgetState(k) for k in keys])
        return {s.key: s for s in found}

    def remaining(self, charge: Charge) -> int:
        """Micro-USD left under `charge.limit_micro` after spend and held reservations."""
        return self.state(charge.key).remaining(charge.limit_micro)

    def sweep(self) -> int:
        """Charge every reservation whose lease has passed its worst case; returns how many. Every operation
        does this lazily."""
        now = self._now()
        return self._guarded("sweep", lambda: self._sweep(now), 0)

    # async twins
    async def areserve(self, reservation_id: str, charges: Sequence[Charge], amount_micro: int,
                       lease_seconds: float) -> Reservation:
        return await asyncio.to_thread(self.reserve, reservation_id, charges, amount_micro, lease_seconds)

    async def asettle(self, reservation_id: str, actual_micro: int) -> Settlement:
        return await asyncio.to_thread(self.settle, reservation_id, actual_micro)

    async def arelease(self, reservation_id: str) -> Settlement:
        return await asyncio.to_thread(self.release, reservation_id)

    async def astate(self, key: str) -> BudgetState:
        return await asyncio.to_thread(self.state, key)

    async def astates(self, keys: Sequence[str]) -> dict[str, BudgetState]:
        return await asyncio.to_thread(self.states, keys)

    async def aremaining(self, charge: Charge) -> int:
        return await asyncio.to_thread(self.remaining, charge)

    async def asweep(self) -> int:
        return await asyncio.to_thread(self.sweep)

    # fail closed / fail open
    def _guarded(self, op: str, run: Callable[[], T], unrecorded: T) -> T:
        """Run `op` on the store. While a recent failure's back-off lasts the store is not re-probed (a
        dead store must not add a connect timeout to every call); after it, the next call probes again."""
        try:
            if self._retry_at and self.clock() < self._retry_at:
                raise BudgetBackendUnavailable(f"budget store {self.url} unreachable (retrying shortly)")
            result = run()
        except BudgetBackendUnavailable as exc:
            now = self.clock()
            if now >= self._retry_at:  # a real probe failed: back off, doubling up to BACKOFF_MAX
                self._retry_at = now + self._backoff
                self._backoff = min(self._backoff * 2, BACKOFF_MAX)
            if not self.fail_open:
                raise
            self.counters[f"fail_open_{op}"] += 1
            log.warning("budget store unreachable during %s; fail_open=True so the call goes on unrecorded: %s",
                        op, exc)
            return unrecorded
        self._backoff = BACKOFF_START
        self._retry_at = 0.0
        return result
