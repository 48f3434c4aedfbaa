"""In-process ledger: dictionaries under one lock. For tests and single-process programs.

Memory stays bounded: finished reservations are forgotten after `retention_seconds`, and a budget key once
nothing is held on it and it can no longer be charged: a key with a calendar window (`...:day:2026-11-24`)
after its window plus a grace period, any other key (`run:...`, `session:...`) `retention_seconds` after its
last reservation. `purge()` does both; `reserve` runs it hourly.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from cascadeflow.budget.ledger import (
    BaseLedger,
    BudgetState,
    Charge,
    Clock,
    Reservation,
    Settlement,
    exceeded,
    key_expiry,
)

# One process settles its own reservations within seconds (a slow call: within its lease); an hour keeps late and
# duplicate settles recognised without holding every call of a busy process for days.
MEMORY_RETENTION_SECONDS = 3600.0


@dataclass(slots=True, kw_only=True)
class _Held:
    keys: tuple[str, ...]
    amount: int
    expires_at: float
    status: str = "held"  # held | settled | expired


class MemoryLedger(BaseLedger):
    """Thread-safe in-memory ledger; state is lost when the process exits."""

    url = "memory://"
    blocks = False  # no I/O: the async pipeline calls it inline rather than in a worker thread

    def __init__(self, *, fail_open: bool = False, clock: Clock | None = None,
                 retention_seconds: float = MEMORY_RETENTION_SECONDS):
        super().__init__(fail_open=fail_open, clock=clock, retention_seconds=retention_seconds)
        self._lock = threading.Lock()
        self._spent: dict[str, int] = {}
        self._reserved: dict[str, int] = {}
        self._key_expiry: dict[str, float] = {}  # when a key may be forgotten (see the module docstring)
        self._reservations: dict[str, _Held] = {}
        self._leases: list[tuple[float, str]] = []  # heap of (expires_at, id); settled ids are skipped

    def __len__(self) -> int:
        """Entries held in memory: budget keys, reservations and lease-heap entries."""
        with self._lock:
            return len(self._key_expiry) + len(self._reservations) + len(self._leases)

    def _reserve(self, reservation_id: str, charges: Sequence[Charge], amount_micro: int,
                 lease_seconds: float, now: float | None) -> Reservation:
        now = self.clock() if now is None else now  # one machine: its clock is the store's
        expires_at = now + lease_seconds
        with self._lock:
            self._expire(now)
            found = self._reservations.get(reservation_id)
            if found is not None:
                return Reservation(reservation_id=reservation_id, amount_micro=found.amount,
                                   status="existing")
            spent, reserved = self._spent, self._reserved
            for charge in charges:
                key = charge.key
                if spent.get(key, 0) + reserved.get(key, 0) + amount_micro > charge.limit_micro:
                    raise exceeded(charge, self._state(key), amount_micro)
            idle_expiry = expires_at + self.retention_seconds
            for charge in charges:
                key = charge.key
                reserved[key] = reserved.get(key, 0) + amount_micro
                self._key_expiry[key] = key_expiry(key, idle_expiry)
            keys = tuple(c.key for c in charges)
            self._reservations[reservation_id] = _Held(keys=keys, amount=amount_micro, expires_at=expires_at)
            heapq.heappush(self._leases, (expires_at, reservation_id))
            return Reservation(reservation_id=reservation_id, amount_micro=amount_micro, status="held")

    def _settle(self, reservation_id: str, actual_micro: int, now: float | None) -> Settlement:
        now = self.clock() if now is None else now
        with self._lock:
            self._expire(now)
            found = self._reservations.get(reservation_id)
            if found is None:
                return Settlement(reservation_id=reservation_id, status="unknown", actual_micro=actual_micro)
            if found.status == "settled":
                return Settlement(reservation_id=reservation_id, status="duplicate",
                                  actual_micro=actual_micro)
            late = found.status == "expired"
            for key in found.keys:
                if late:  # its lease passed and charged the worst case: the real cost replaces it
                    self._spent[key] = self._spent.get(key, 0) + actual_micro - found.amount
                else:
                    self._reserved[key] -= found.amount
                    self._spent[key] = self._spent.get(key, 0) + actual_micro
            found.status = "settled"
            return Settlement(reservation_id=reservation_id, status="late" if late else "settled",
                              actual_micro=actual_micro)

    def _states(self, keys: Sequence[str], now: float | None) -> list[BudgetState]:
        now = self.clock() if now is None else now
        with self._lock:
            self._expire(now)
            return [self._state(k) for k in keys]

    def _sweep(self, now: float | None) -> int:
        now = self.clock() if now is None else now
        with self._lock:
            return self._expire(now)

    def _purge(self, before: float) -> int:
        """Forget finished reservations whose lease ended before `before`, and keys past their expiry."""
        now = before + self.retention_seconds
        with self._lock:
            self._expire(now)
            gone = [rid for rid, r in self._reservations.items() if r.status != "held" and r.expires_at < before]
            for rid in gone:
                del self._reservations[rid]
            stale = [k for k, until in self._key_expiry.items() if until < now and not self._reserved.get(k)]
            for key in stale:
                del self._key_expiry[key]
                self._spent.pop(key, None)
                self._reserved.pop(key, None)
            return len(gone)

    def _state(self, key: str) -> BudgetState:
        return BudgetState(key=key, spent=self._spent.get(key, 0), reserved=self._reserved.get(key, 0))

    def _expire(self, now: float) -> int:
        """Charge held reservations whose lease passed their reserved worst case (caller holds the lock): the
        caller that held it stopped answering, so whether the provider billed the call is unknown."""
        charged = 0
        while self._leases and self._leases[0][0] <= now:
            _, rid = heapq.heappop(self._leases)
            held = self._reservations.get(rid)
            if held is None or held.status != "held":  # settled (or purged) before its lease ended
                continue
            for key in held.keys:
                self._reserved[key] -= held.amount
                self._spent[key] = self._spent.get(key, 0) + held.amount
            held.status = "expired"
            charged += 1
        self.counters["expired_charged"] += charged
        return charged

    # Nothing here blocks, so the async twins run inline instead of in a worker thread.
    async def areserve(self, reservation_id: str, charges: Sequence[Charge], amount_micro: int,
                       lease_seconds: float) -> Reservation:
        return self.reserve(reservation_id, charges, amount_micro, lease_seconds)

    async def asettle(self, reservation_id: str, actual_micro: int) -> Settlement:
        return self.settle(reservation_id, actual_micro)
