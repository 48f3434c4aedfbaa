"""HTTP attempts of unknown outcome inside one pipeline attempt: reserved before they are re-sent, charged
their worst case.

The HTTP layer may send an attempt's request more than once (a read timeout, a body cut mid-way, an
unreadable 200). Each of those requests may have been billed, so before the layer sends again it calls
`ResendReservations.reserve` (through the HTTP layer's hook, `providers.http.BEFORE_RESEND`), which reserves one more worst case on
the attempt's budgets; when that does not fit, the layer raises instead of re-sending. Afterwards the
attempt is charged its answer (or its own worst case) plus one worst case per earlier unknown request; its
own reservation is settled to that whole amount (a settlement may exceed its reservation) and the extra
reservations are then released.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from cascadeflow.errors import BudgetBackendUnavailable
from cascadeflow.messages import HttpAttempt
from cascadeflow.pricing import to_micro_usd
from cascadeflow.providers.http import BEFORE_RESEND

log = logging.getLogger(__name__)



def earlier_unknown(attempts: Sequence[HttpAttempt]) -> int:
    """How many requests before the last one ended with an unknown outcome (each may have been billed)."""
    return sum(1 for a in attempts[:-1] if a.outcome == "unknown")


def http_attempts_of(source: Any) -> tuple[HttpAttempt, ...]:
    """The HTTP attempts carried by a Response or by the error a call raised (empty when not over HTTP)."""
    return tuple(getattr(source, "http_attempts", ()) or ())


class ResendReservations:
    """The extra reservations of one pipeline attempt (see the module docstring)."""

    def __init__(self, ledger: Any, *, charges: list[Any], reservation_id: str, worst: Decimal,
                 lease_seconds: float):
        self._ledger = ledger
        self._charges = charges
        self._base = reservation_id
        self._worst_micro = to_micro_usd(worst)
        self._lease = lease_seconds
        self.ids: list[str] = []

    def reserve(self) -> None:
        """Reserve one more worst case; raises BudgetExceeded / BudgetBackendUnavailable when it cannot."""
        reservation_id = f"{self._base}:resend{len(self.ids) + 1}"
        self._ledger.reserve(reservation_id, self._charges, self._worst_micro, self._lease)
        self.ids.append(reservation_id)

    def release_all(self) -> None:
        """Give the extra reservations back: the attempt's own settlement (which may exceed its reservation)
        has recorded everything it was charged, so they must be released only after it."""
        for reservation_id in self.ids:
            try:
                self._ledger.release(reservation_id)
            except BudgetBackendUnavailable:
                log.error("ledger unreachable while releasing %s; it is kept until its lease expires",
                          reservation_id)


@contextmanager
def resend_reservations(ledger: Any, charges: list[Any], reservation_id: str, worst: Decimal | None,
                        lease_seconds: float) -> Iterator[ResendReservations | None]:
    """Around one attempt's send and settlement: lets the HTTP layer reserve before re-sending (through
    BEFORE_RESEND), and releases those extra reservations on the way out."""
    if not reservation_id or worst is None:
        yield None
        return
    resends = ResendReservations(ledger, charges=charges, reservation_id=reservation_id, worst=worst,
                                 lease_seconds=lease_seconds)
    token = BEFORE_RESEND.set(resends.reserve)
    try:
        yield resends
    finally:
        BEFORE_RESEND.reset(token)
        resends.release_all()


def note_http(record: Any, outcome: Any) -> None:
    """Put on an AttemptRecord the admission wait and the HTTP requests made (read from the Response or from
    the error the call raised), and take the wait out of its latency: queueing is not the provider's time."""
    queued_ms = getattr(outcome, "queued_ms", 0.0) or 0.0
    record.latency_ms = max(0.0, record.latency_ms - queued_ms)
    record.queued_ms = queued_ms
    record.http_attempts = http_attempts_of(outcome)


def charge_resends(record: Any, worst_case: Callable[[], Decimal]) -> bool:
    """Add to an AttemptRecord's cost one worst case per HTTP request of unknown outcome that was followed by
    another (the last request's outcome is the attempt's own, charged as such); True when it added any."""
    unknown = earlier_unknown(record.http_attempts)
    if not unknown:
        return False
    worst = record.reserved_usd
    if worst is None:
        worst = record.reserved_usd = worst_case()
    record.cost += worst * unknown
    note = f"{unknown} earlier HTTP request(s) of unknown outcome charged their worst case"
    record.error = f"{record.error}; {note}" if record.error else note
    return True
