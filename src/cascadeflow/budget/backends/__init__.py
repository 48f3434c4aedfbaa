"""Ledger backends, one module each, and `open_ledger(url)`, which picks one by URL scheme and imports only
that backend (Redis and PostgreSQL need their extras). The protocol and the shared base live in
`cascadeflow.budget.ledger`, which imports no backend.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from cascadeflow.budget.ledger import BaseLedger, Clock
from cascadeflow.errors import ConfigurationError
from cascadeflow.trace.redact import redact_url

SCHEMES = ("memory", "sqlite", "redis", "rediss", "postgresql", "postgres")


def open_ledger(url: str, *, fail_open: bool = False, clock: Clock | None = None,
                retention_seconds: float | None = None) -> BaseLedger:
    """A ledger chosen by URL: `memory://`, `sqlite:///relative.db` / `sqlite:////abs/path.db`,
    `redis://host:port/db?prefix=cf`, `postgresql://user@host/db?schema=public&table_prefix=cf_`.
    `retention_seconds`: how long finished reservations are kept (None: the backend's default, 7 days for
    the shared stores and SQLite, 1 hour for the memory ledger)."""
    if not isinstance(url, str) or "://" not in url:
        shown = redact_url(url) if isinstance(url, str) else repr(url)
        raise ConfigurationError(f"budget ledger URL {shown} is not a URL; use one of the schemes "
                                 f"{', '.join(s + '://' for s in SCHEMES)}")
    scheme = urlsplit(url).scheme.lower()
    common: dict[str, Any] = {"fail_open": fail_open, "clock": clock}
    if retention_seconds is not None:
        common["retention_seconds"] = retention_seconds
    if scheme == "memory":
        from cascadeflow.budget.backends.memory import MemoryLedger

        return MemoryLedger(**common)
    if scheme == "sqlite":
        from cascadeflow.budget.backends.sqlite import SqliteLedger

        return SqliteLedger.from_url(url, **common)
    if scheme in ("redis", "rediss"):
        from cascadeflow.budget.backends.redis import RedisLedger

        return RedisLedger.from_url(url, **common)
    if scheme in ("postgresql", "postgres"):
        from cascadeflow.budget.backends.postgres import PostgresLedger

        return PostgresLedger.from_url(url, **common)
    raise ConfigurationError(f"unknown budget ledger scheme {scheme!r} in {redact_url(url)}; known schemes: "
                             f"{', '.join(s + '://' for s in SCHEMES)}")
