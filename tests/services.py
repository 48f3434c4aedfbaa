"""The test servers shared by every test module (Redis and PostgreSQL on loopback: a missing one is a skip
locally and a failure under CI) and a controllable clock."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import pytest

REDIS_URL = os.environ.get("CASCADEFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get("CASCADEFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def _missing(what: str, url: str) -> None:
    message = f"{what} server not reachable at {url}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set: the server is required)")
    pytest.skip(message)


def require_redis() -> None:
    if not _reachable(REDIS_URL, 6379):
        _missing("Redis", REDIS_URL)


def require_postgres() -> None:
    if not _reachable(POSTGRES_URL, 5432):
        _missing("PostgreSQL", POSTGRES_URL)


class FakeClock:
    """A controllable wall clock (seconds since the epoch)."""

    def __init__(self, start: float = 1_795_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
