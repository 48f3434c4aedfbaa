"""Circuit breakers: one per (provider, model), opened by the provider's own failures (outages, timeouts,
garbage), never by our queueing, throttling or the caller's bad input."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cascadeflow.errors import CircuitOpenError

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    failure_threshold: int = 5  # consecutive failed calls that open the breaker
    cooldown: float = 30.0  # seconds open before one probe call is let through



class CircuitBreaker:
    """Closed -> open after `failure_threshold` consecutive failures -> half-open after `cooldown` (one probe)
    -> closed on the probe's success, open again on its failure."""

    def __init__(self, *, settings: BreakerSettings, clock: Clock = time.monotonic):
        self.settings = settings
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.settings.cooldown:
            return "half_open"
        return "open"

    def before_call(self, provider: str, model: str) -> None:
        """Raise CircuitOpenError unless a call may go out now."""
        with self._lock:
            if self._opened_at is None:
                return
            waited = self._clock() - self._opened_at
            if waited >= self.settings.cooldown and not self._probing:
                self._probing = True
                return
            reopens_in = max(0.0, self.settings.cooldown - waited)
        raise CircuitOpenError(
            f"circuit open after {self.settings.failure_threshold} consecutive failures; "
            f"next probe in {reopens_in:.1f}s", reopens_in=reopens_in, provider=provider, model=model)

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._probing = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._probing or self._failures >= self.settings.failure_threshold:
                self._opened_at = self._clock()
            self._probing = False

    def release_probe(self) -> None:
        """A probe that ended without a verdict (cancelled, client error) lets the next call probe instead."""
        with self._lock:
            self._probing = False


class CircuitBreakers:
    """One breaker per (provider, model), created on first use."""

    def __init__(self, *, settings: BreakerSettings | None = None, clock: Clock = time.monotonic):
        self.settings = settings or BreakerSettings()
        self._clock = clock
        self._breakers: dict[tuple[str, str], CircuitBreaker] = {}
        self._lock = threading.Lock()

    def get(self, provider: str, model: str) -> CircuitBreaker:
        key = (provider, model)
        with self._lock:
            breaker = self._breakers.get(key)
            if breaker is None:
                breaker = self._breakers[key] = CircuitBreaker(settings=self.settings, clock=self._clock)
            return breaker


DEFAULT_BREAKERS = CircuitBreakers()
