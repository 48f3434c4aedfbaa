"""Cache backend fixtures: every backend behind one factory; each Redis test on its own key prefix."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from services import REDIS_URL, FakeClock, require_redis

from cascadeflow.cache.backends.memory import MemoryCacheBackend
from cascadeflow.cache.backends.sqlite import SqliteCacheBackend

BACKENDS = ["memory", "sqlite", "redis"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A fresh key prefix on the test Redis, removed afterwards."""
    require_redis()
    import redis

    prefix = f"cftest:cache:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


def _factory(kind: str, request, tmp_path, clock) -> tuple[Callable[..., object], list]:
    made: list = []
    prefix = request.getfixturevalue("redis_prefix") if kind == "redis" else "cftest:"

    def make(*, max_entries: int = 100, prefix_suffix: str = ""):
        if kind == "memory":
            backend = MemoryCacheBackend(max_entries=max_entries, clock=clock)
        elif kind == "sqlite":
            backend = SqliteCacheBackend(tmp_path / "cache.sqlite3", max_entries=max_entries,
                                         prefix=prefix + prefix_suffix, clock=clock)
        else:
            from cascadeflow.cache.backends.redis import RedisCacheBackend

            backend = RedisCacheBackend.from_url(REDIS_URL, prefix=prefix + prefix_suffix)
        made.append(backend)
        return backend

    make.kind = kind  # type: ignore[attr-defined]
    return make, made


@pytest.fixture(params=BACKENDS)
def make_backend(request, tmp_path, clock) -> Iterator[Callable[..., object]]:
    """A factory of one backend kind: make_backend(max_entries=..., prefix_suffix=...)."""
    make, made = _factory(request.param, request, tmp_path, clock)
    yield make
    for backend in made:
        backend.close()


@pytest.fixture(params=["sqlite", "redis"])
def make_shared_backend(request, tmp_path, clock) -> Iterator[Callable[..., object]]:
    """The backends that several processes share (and that key prefixes divide)."""
    make, made = _factory(request.param, request, tmp_path, clock)
    yield make
    for backend in made:
        backend.close()


@pytest.fixture(params=["memory", "sqlite"])
def make_bounded_backend(request, tmp_path, clock) -> Iterator[Callable[..., object]]:
    """The backends that bound their size themselves (Redis leaves it to the server's maxmemory policy)."""
    make, made = _factory(request.param, request, tmp_path, clock)
    yield make
    for backend in made:
        backend.close()
