"""Ledger fixtures: every backend behind one factory, each test on its own Redis prefix / PostgreSQL schema.

Redis and PostgreSQL run on the dev and CI machines; when one is missing the test is skipped locally and
fails when the CI environment variable is set.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from budget_support import (
    POSTGRES_URL,
    REDIS_URL,
    FakeClock,
    LedgerFactory,
    drop_backend,
    require_postgres,
    require_redis,
)

from cascadeflow.budget import BaseLedger, open_ledger

BACKENDS = ["memory", "sqlite", "redis", "postgres"]
PERSISTENT = ["sqlite", "redis", "postgres"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def backend_url(backend: str, tmp_path) -> str:  # type: ignore[no-untyped-def]
    """A fresh, unshared ledger URL for `backend` (the server must be reachable)."""
    tag = uuid.uuid4().hex[:12]
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / f'ledger-{tag}.db'}"
    if backend == "redis":
        require_redis()
        return f"{REDIS_URL}?prefix={{cftest-{tag}}}"
    if backend == "postgres":
        require_postgres()
        return f"{POSTGRES_URL}?schema=cftest_{tag}"
    raise AssertionError(backend)


@pytest.fixture
def ledger_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    url = backend_url(request.param, tmp_path)
    yield url
    drop_backend(url)


@pytest.fixture
def make_ledger(ledger_url: str) -> Iterator[LedgerFactory]:
    """Opens ledgers on this test's URL; on a persistent backend several objects are several clients of
    one store (a memory ledger is private to its object)."""
    opened: list[BaseLedger] = []

    def factory(**kw: object) -> BaseLedger:
        ledger = open_ledger(ledger_url, **kw)  # type: ignore[arg-type]
        opened.append(ledger)
        return ledger

    yield factory
    for ledger in opened:
        ledger.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`ledger_url` runs over every backend unless a test marks the ones it wants with @backends(...)."""
    if "ledger_url" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("backends")
        chosen = list(marker.args) if marker else BACKENDS
        marks = {"redis": pytest.mark.redis, "postgres": pytest.mark.postgres}
        metafunc.parametrize("ledger_url", [pytest.param(b, id=b, marks=[marks[b]] if b in marks else [])
                                            for b in chosen], indirect=True)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "backends(*names): run a ledger test on these backends only")

