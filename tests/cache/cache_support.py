"""Shared helpers of the cache tests: the test Redis (a missing server is a skip locally and a failure
under CI) and a controllable clock."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import pytest

REDIS_URL = os.environ.get("CASCADEFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def require_redis() -> None:
    parts = urlsplit(REDIS_URL)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=1):
            return
    except OSError:
        message = f"Redis server not reachable at {REDIS_URL}"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI is set: the server is required)")
        pytest.skip(message)


class FakeClock:
    """A controllable wall clock (seconds since the epoch)."""

    def __init__(self, start: float = 1_795_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
