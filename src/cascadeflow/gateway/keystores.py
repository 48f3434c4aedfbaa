"""Key stores on the servers the ledger already uses: SQLite (one machine), Redis and PostgreSQL (a fleet).
Each keeps one JSON document per key id; `open_key_store(url)` picks one by URL scheme."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cascadeflow.errors import ConfigurationError
from cascadeflow.gateway.keys import KeyStore, VirtualKey
from cascadeflow.trace.redact import redact_url


class SqliteKeyStore:
    """Keys in a SQLite file (`sqlite:///keys.db`, `sqlite:////abs/keys.db`)."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout = 5000")
        self._db.execute("CREATE TABLE IF NOT EXISTS cascadeflow_keys (id TEXT PRIMARY KEY, doc TEXT NOT NULL)")

    def put(self, key: VirtualKey) -> None:
        with self._lock:
            self._db.execute("INSERT INTO cascadeflow_keys (id, doc) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET "
                             "doc = excluded.doc", (key.id, json.dumps(key.to_row())))

    def get(self, key_id: str) -> VirtualKey | None:
        with self._lock:
            row = self._db.execute("SELECT doc FROM cascadeflow_keys WHERE id = ?", (key_id,)).fetchone()
        return VirtualKey.from_row(json.loads(row[0])) if row else None

    def all(self) -> list[VirtualKey]:
        with self._lock:
            rows = self._db.execute("SELECT doc FROM cascadeflow_keys").fetchall()
        return [VirtualKey.from_row(json.loads(r[0])) for r in rows]

    def ping(self) -> None:
        with self._lock:
            self._db.execute("SELECT 1").fetchone()


class RedisKeyStore:
    """Keys in one Redis hash (`redis://host:port/db?prefix=gw`: the hash `<prefix>:keys`)."""

    def __init__(self, client: Any, *, prefix: str = "cascadeflow"):
        self.client = client
        self.hash = f"{prefix}:keys"

    @classmethod
    def from_url(cls, url: str) -> RedisKeyStore:
        try:
            import redis
        except ImportError:
            raise ConfigurationError('the Redis key store needs the redis client: pip install "cascadeflow[redis]"') \
                from None
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        prefix = query.pop("prefix", ["cascadeflow"])[0]
        plain = parts._replace(query="").geturl()
        return cls(redis.Redis.from_url(plain), prefix=prefix)

    def put(self, key: VirtualKey) -> None:
        self.client.hset(self.hash, key.id, json.dumps(key.to_row()))

    def get(self, key_id: str) -> VirtualKey | None:
        raw = self.client.hget(self.hash, key_id)
        return VirtualKey.from_row(json.loads(raw)) if raw else None

    def all(self) -> list[VirtualKey]:
        return [VirtualKey.from_row(json.loads(v)) for v in self.client.hvals(self.hash)]

    def ping(self) -> None:
        self.client.ping()


class PostgresKeyStore:
    """Keys in a PostgreSQL table (`postgresql://user@host/db?table=cascadeflow_keys`)."""

    def __init__(self, url: str, *, table: str = "cascadeflow_keys"):
        try:
            import psycopg
            from psycopg import sql
        except ImportError:
            raise ConfigurationError('the PostgreSQL key store needs psycopg 3: pip install "cascadeflow[postgres]"') \
                from None
        if not table.replace("_", "").isalnum():
            raise ConfigurationError(f"key store table name {table!r} must be letters, digits and underscores")
        self._sql = sql
        self._table = sql.Identifier(table)
        self._lock = threading.Lock()
        self._db = psycopg.connect(url, autocommit=True)
        self._db.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (id TEXT PRIMARY KEY, doc JSONB NOT NULL)")
                         .format(self._table))

    @classmethod
    def from_url(cls, url: str) -> PostgresKeyStore:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        table = query.pop("table", ["cascadeflow_keys"])[0]
        return cls(parts._replace(query="").geturl(), table=table)

    def _run(self, statement: str, args: tuple[Any, ...]) -> list[Any]:
        with self._lock:
            cursor = self._db.execute(self._sql.SQL(statement).format(self._table), args)
            return cursor.fetchall() if cursor.description else []

    def put(self, key: VirtualKey) -> None:
        self._run("INSERT INTO {} (id, doc) VALUES (%s, %s) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
                  (key.id, json.dumps(key.to_row())))

    def get(self, key_id: str) -> VirtualKey | None:
        rows = self._run("SELECT doc FROM {} WHERE id = %s", (key_id,))
        return VirtualKey.from_row(rows[0][0]) if rows else None

    def all(self) -> list[VirtualKey]:
        return [VirtualKey.from_row(r[0]) for r in self._run("SELECT doc FROM {}", ())]

    def ping(self) -> None:
        with self._lock:
            self._db.execute("SELECT 1")


def open_key_store(url: str) -> KeyStore:
    """A key store by URL: `sqlite:///keys.db`, `redis://host:6379/0?prefix=gw`, `postgresql://...`."""
    scheme = urlsplit(url).scheme.lower() if isinstance(url, str) else ""
    if scheme == "sqlite":
        path = url.split("://", 1)[1]
        path = path.removeprefix("/")  # sqlite:///rel.db -> rel.db; sqlite:////abs -> /abs
        if not path:
            raise ConfigurationError("a SQLite key store URL needs a path: sqlite:///keys.db")
        return SqliteKeyStore(path)
    if scheme in ("redis", "rediss"):
        return RedisKeyStore.from_url(url)
    if scheme in ("postgresql", "postgres"):
        return PostgresKeyStore.from_url(url)
    shown = redact_url(url) if isinstance(url, str) else repr(url)
    raise ConfigurationError(f"key store URL {shown}: use sqlite:///keys.db, redis://... or postgresql://...")
