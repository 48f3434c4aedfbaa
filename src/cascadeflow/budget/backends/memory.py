"""In-process ledger: dictionaries under one lock. For tests and single-process programs."""

from __future__ import annotations

import heapq
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from cascadeflow.budget.ledger import (
    RETENTION_SECONDS,
    BaseLedger,
    BudgetState,
    Clock,
    Reservation,
    Settlement,
    exceeded,
)
from cascadeflow.runtime.call import Charge


@dataclass(slots=True)
class _Held:
    keys: tuple[str, ...]
    amount: int
    expires_at: float
    status: str = "held"  # held | settled | expired


class MemoryLedger(BaseLedger):
    """Thread-safe in-memory ledger; state is lost when the process exits."""

    url = "memory://"

    def __init__(self, *, fail_open: bool = False, clock: Clock | None = None,
                 retention_seconds: float = RETENTION_SECONDS):
        super().__init__(fail_open=fail_open, clock=clock, retention_seconds=retention_seconds)
        self._lock = threading.Lock()
        self._spent: dict[str, int] = {}
        self._reserved: dict[str, int] = {}
        self._reservations: dict[str, _Held] = {}
        self._leases: list[tuple[float, str]] = []  # heap of (expires_at, id); settled ids are skipped

    def _reserve(self, reservation_id: str, charges: Sequence[Charge], amount_micro: int,
                 expires_at: float, now: float) -> Reservation:
        with self._lock:
            self._expire(now)
            found = self._reservations.get(reservation_id)
            if found is not None:
                return Reservation(reservation_id, found.amount, "existing")
            spent, reserved = self._spent, self._reserved
            for charge in charges:
                key = charge.key
                if spent.get(key, 0) + reserved.get(key, 0) + amount_micro > charge.limit_micro:
                    raise exceeded(charge, self._state(key), amount_micro)
            for charge in charges:
                self._reserved[charge.key] = self._reserved.get(charge.key, 0) + amount_micro
            keys = tuple(c.key for c in charges)
            self._reservations[reservation_id] = _Held(keys, amount_micro, expires_at)
            heapq.heappush(self._leases, (expires_at, reservation_id))
            return Reservation(reservation_id, amount_micro, "held")

    def _settle(self, reservation_id: str, actual_micro: int, now: float) -> Settlement:
        with self._lock:
            self._expire(now)
            found = self._reservations.get(reservation_id)
            if found is None:
                return Settlement(reservation_id, "unknown", actual_micro)
            if found.status == "settled":
                return Settlement(reservation_id, "duplicate", actual_micro)
            late = found.status == "expired"
            for key in found.keys:
                if not late:
                    self._reserved[key] -= found.amount
                self._spent[key] = self._spent.get(key, 0) + actual_micro
            found.status = "settled"
            return Settlement(reservation_id, "late" if late else "settled", actual_micro)

    def _states(self, keys: Sequence[str], now: float) -> list[BudgetState]:
        with self._lock:
            self._expire(now)
            return [self._state(k) for k in keys]

    def _sweep(self, now: float) -> int:
        with self._lock:
            return self._expire(now)

    def _purge(self, before: float) -> int:
        with self._lock:
            gone = [rid for rid, r in self._reservations.items() if r.status != "held" and r.expires_at < before]
            for rid in gone:
                del self._reservations[rid]
            return len(gone)

    def _state(self, key: str) -> BudgetState:
        return BudgetState(key, self._spent.get(key, 0), self._reserved.get(key, 0))

    def _expire(self, now: float) -> int:
        """Release held reservations whose lease passed (caller holds the lock)."""
        released = 0
        while self._leases and self._leases[0][0] <= now:
            _, rid = heapq.heappop(self._leases)
            held = self._reservations.get(rid)
            if held is None or held.status != "held":  # settled (or purged) before its lease ended
                continue
            for key in held.keys:
                self._reserved[key] -= held.amount
            held.status = "expired"
            released += 1
        self.counters["expired_released"] += released
        return released

    # Nothing here blocks, so the async twins run inline instead of in a worker thread.
    async def areserve(self, reservation_id: str, charges: Sequence[Charge], amount_micro: int,
                       lease_seconds: float) -> Reservation:
        return self.reserve(reservation_id, charges, amount_micro, lease_seconds)

    async def asettle(self, reservation_id: str, actual_micro: int) -> Settlement:
        return self.settle(reservation_id, actual_micro)
