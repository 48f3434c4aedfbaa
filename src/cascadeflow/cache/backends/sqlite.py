"""`SqliteCacheBackend`: entries in one SQLite file, shared by the processes of a machine; at most
`max_entries` per key prefix (least recently used go first), expired entries purged as new ones arrive."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from cascadeflow.cache.backends import COUNTERS

SCHEMA = """
CREATE TABLE IF NOT EXISTS cache_entries (
  key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_at REAL, last_used REAL NOT NULL,
  scope TEXT, vector BLOB
);
CREATE INDEX IF NOT EXISTS cache_entries_scope ON cache_entries (scope) WHERE scope IS NOT NULL;
CREATE INDEX IF NOT EXISTS cache_entries_used ON cache_entries (last_used);
CREATE TABLE IF NOT EXISTS cache_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class SqliteCacheBackend:
    name = "sqlite"

    def __init__(self, path: str | Path, *, max_entries: int = 10_000, prefix: str = "cascadeflow:cache:",
                 clock=time.time):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.max_entries = max_entries
        self.prefix = prefix
        self._clock = clock
        self._lock = threading.Lock()
        # autocommit: each statement is its own transaction; WAL lets other processes read meanwhile
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._like = self.prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"

    def get(self, key: str) -> bytes | None:
        now = self._clock()
        with self._lock:
            row = self._db.execute("SELECT value, expires_at FROM cache_entries WHERE key = ?",
                                   (self.prefix + key,)).fetchone()
            if row is None:
                return None
            if row[1] is not None and row[1] <= now:
                self._db.execute("DELETE FROM cache_entries WHERE key = ?", (self.prefix + key,))
                return None
            self._db.execute("UPDATE cache_entries SET last_used = ? WHERE key = ?", (now, self.prefix + key))
            return bytes(row[0])

    def put(self, key: str, value: bytes, ttl: float | None, *, scope: str | None = None,
            vector: bytes | None = None) -> None:
        now = self._clock()
        expires = now + ttl if ttl is not None else None
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO cache_entries (key, value, expires_at, last_used, scope, vector) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (self.prefix + key, value, expires, now, scope if vector is not None else None, vector))
                self._db.execute("DELETE FROM cache_entries WHERE expires_at <= ? AND key LIKE ? ESCAPE '\\'",
                                 (now, self._like))
                self._db.execute(
                    "DELETE FROM cache_entries WHERE key IN (SELECT key FROM cache_entries WHERE key LIKE ? "
                    "ESCAPE '\\' ORDER BY last_used DESC LIMIT -1 OFFSET ?)", (self._like, self.max_entries))
                self._add({"stores": 1})
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def candidates(self, scope: str) -> list[tuple[str, bytes]]:
        now = self._clock()
        with self._lock:
            rows = self._db.execute(
                "SELECT key, vector FROM cache_entries WHERE scope = ? AND (expires_at IS NULL OR expires_at > ?)",
                (scope, now)).fetchall()
        cut = len(self.prefix)
        return [(key[cut:], bytes(vector)) for key, vector in rows if key.startswith(self.prefix)]

    def count(self, counters: Mapping[str, int]) -> None:
        with self._lock:
            self._add(counters)

    def _add(self, counters: Mapping[str, int]) -> None:
        self._db.executemany(
            "INSERT INTO cache_counters (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
            [(self.prefix + counter, amount) for counter, amount in counters.items() if amount])

    def stats(self) -> dict[str, int]:
        now = self._clock()
        with self._lock:
            entries = self._db.execute(
                "SELECT COUNT(*) FROM cache_entries WHERE key LIKE ? ESCAPE '\\' "
                "AND (expires_at IS NULL OR expires_at > ?)", (self._like, now)).fetchone()[0]
            rows = dict(self._db.execute("SELECT name, value FROM cache_counters WHERE name LIKE ? ESCAPE '\\'",
                                         (self._like,)).fetchall())
        cut = len(self.prefix)
        counters = {name[cut:]: value for name, value in rows.items()}
        return {"entries": entries, **{c: counters.get(c, 0) for c in COUNTERS}}

    def clear(self) -> int:
        with self._lock:
            removed = self._db.execute("DELETE FROM cache_entries WHERE key LIKE ? ESCAPE '\\'",
                                       (self._like,)).rowcount
            self._db.execute("DELETE FROM cache_counters WHERE name LIKE ? ESCAPE '\\'", (self._like,))
        return removed

    def close(self) -> None:
        with self._lock:
            self._db.close()
