"""Deterministic stand-ins for time in retry and breaker tests (a recording sleep, a manual clock) and a
bounded wait for what the loopback server's thread does."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class RecordedSleep:
    """An async sleep that returns at once and remembers every wait it was asked for."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class ManualClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def wait_until(predicate: Callable[[], bool], seconds: float = 5.0) -> bool:
    """Poll for something the loopback server's thread does (a bound on waiting, not a timing assertion)."""
    for _ in range(int(seconds / 0.01)):
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return False
