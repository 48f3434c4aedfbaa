"""Shared helpers of the budget tests: the ledger factory type and cleaning a shared server; the servers and
the clock are tests/services.py's (re-exported here for the budget tests)."""

from __future__ import annotations

from collections.abc import Callable

from services import POSTGRES_URL, REDIS_URL, FakeClock, require_postgres, require_redis

from cascadeflow.budget import BaseLedger, open_ledger

__all__ = ["POSTGRES_URL", "REDIS_URL", "FakeClock", "LedgerFactory", "drop_backend", "require_postgres",
           "require_redis"]

LedgerFactory = Callable[..., BaseLedger]


def drop_backend(url: str) -> None:
    """Remove what a test left in a shared server."""
    if url.startswith("redis"):
        ledger = open_ledger(url)
        ledger.drop_all()  # type: ignore[attr-defined]
        ledger.close()
    elif url.startswith("postgresql"):
        import psycopg

        schema = url.split("schema=", 1)[1]
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
