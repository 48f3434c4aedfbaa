"""Retries that cannot storm: exponential backoff with full jitter, the server's Retry-After, and a retry
budget per provider that caps retries at a share of first attempts (so an outage multiplies load by at most
1 + `ratio`, not by `max_attempts`)."""

from __future__ import annotations

import email.utils
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cascadeflow.errors import ConfigurationError


def _check(name: str, value: Any, *, integer: bool = False, minimum: float = 0.0,
           strict: bool = False) -> None:
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or not math.isfinite(value) \
            or value < minimum or (strict and value == minimum):
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise ConfigurationError(f"{name} must be a finite number {bound}, got {value!r}")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter; a server's Retry-After is obeyed up to `max_retry_after`."""

    max_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 20.0
    max_retry_after: float = 60.0  # a server asking for a longer wait gets the error raised instead

    def __post_init__(self) -> None:
        _check("max_attempts", self.max_attempts, integer=True, minimum=1)
        for name in ("base_delay", "max_delay", "max_retry_after"):
            _check(name, getattr(self, name))

    def backoff(self, retry_number: int, rng: random.Random) -> float:
        return rng.uniform(0.0, min(self.max_delay, self.base_delay * (2 ** retry_number)))


@dataclass(frozen=True, slots=True)
class RetryBudgetSettings:
    """Each first attempt earns `ratio` of a retry and time earns `per_second`; a retry spends one. The
    balance starts at, and never exceeds, `reserve`, so a quiet process can still retry a lone failure while
    a storm of failures gets at most `reserve` + `ratio` x calls + `per_second` x seconds retries."""

    ratio: float = 0.2
    reserve: float = 10.0
    per_second: float = 1.0

    def __post_init__(self) -> None:
        for name in ("ratio", "reserve", "per_second"):
            _check(name, getattr(self, name))


class RetryBudget:
    """The retry budget of one provider (thread-safe)."""

    def __init__(self, *, settings: RetryBudgetSettings, clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self._balance = settings.reserve
        self._clock = clock
        self._at = clock()
        self._lock = threading.Lock()

    def _add(self, amount: float) -> None:
        now = self._clock()
        amount += (now - self._at) * self.settings.per_second
        self._at = now
        self._balance = min(self.settings.reserve, self._balance + amount)

    def earn(self) -> None:
        with self._lock:
            self._add(self.settings.ratio)

    def spend(self) -> bool:
        """Take one retry; False when the budget is spent (the error is raised instead of retried)."""
        with self._lock:
            self._add(0.0)
            if self._balance < 1.0:
                return False
            self._balance -= 1.0
            return True


class RetryBudgets:
    """One RetryBudget per provider, created on first use."""

    def __init__(self, *, settings: RetryBudgetSettings | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.settings = settings or RetryBudgetSettings()
        self._clock = clock
        self._budgets: dict[str, RetryBudget] = {}
        self._lock = threading.Lock()

    def get(self, provider: str) -> RetryBudget:
        with self._lock:
            found = self._budgets.get(provider)
            if found is None:
                found = self._budgets[provider] = RetryBudget(settings=self.settings, clock=self._clock)
            return found

    def reset(self) -> None:
        """Forget every provider's balance (each starts again at its reserve)."""
        with self._lock:
            self._budgets.clear()


DEFAULT_RETRY_BUDGETS = RetryBudgets()


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None when absent or invalid."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
