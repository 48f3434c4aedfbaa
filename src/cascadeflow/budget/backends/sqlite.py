"""SQLite ledger: one file shared by every process on a machine; WAL mode, each operation one
`BEGIN IMMEDIATE` transaction (the write lock is taken before reading, so check-and-reserve is atomic)."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from cascadeflow.budget.ledger import (
    RETENTION_SECONDS,
    BaseLedger,
    BudgetState,
    Charge,
    Clock,
    Reservation,
    Settlement,
    exceeded,
    key_expiry,
)
from cascadeflow.errors import BudgetBackendUnavailable, ConfigurationError

log = logging.getLogger(__name__)
T = TypeVar("T")

BUSY_TIMEOUT_MS = 10_000  # how long a writer waits for another process's transaction before giving up

def _set_wal(conn: sqlite3.Connection) -> None:
    """Switch the database to WAL, waiting out other processes doing the same. Changing the journal mode
    needs an exclusive lock and SQLite reports a conflict at once instead of calling its busy handler, so
    processes opening a new ledger together (a fleet starting up) would fail; the mode is stored in the file,
    so the wait ends as soon as one of them has switched it."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.001
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


SCHEMA = """
CREATE TABLE IF NOT EXISTS budget_keys (
    key TEXT PRIMARY KEY, spent INTEGER NOT NULL DEFAULT 0, reserved INTEGER NOT NULL DEFAULT 0, expires_at REAL);
CREATE TABLE IF NOT EXISTS budget_reservations (
    id TEXT PRIMARY KEY, keys TEXT NOT NULL, amount INTEGER NOT NULL, expires_at REAL NOT NULL,
    status TEXT NOT NULL, actual INTEGER);
CREATE INDEX IF NOT EXISTS budget_reservations_lease ON budget_reservations (status, expires_at);
"""


class SqliteLedger(BaseLedger):
    """Ledger in a SQLite file. Safe across threads (one connection per ledger, under a lock) and across
    processes (SQLite's file lock). Open it again after `fork()`; the connection is reopened if the pid
    changed. `synchronous=NORMAL`: in WAL mode a power cut may lose the last commits but never corrupts."""

    def __init__(self, path: str | os.PathLike[str], *, fail_open: bool = False, clock: Clock | None = None,
                 retention_seconds: float = RETENTION_SECONDS):
        super().__init__(fail_open=fail_open, clock=clock, retention_seconds=retention_seconds)
        self.path = str(path)
        self.url = f"sqlite:///{self.path}"
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0

    @classmethod
    def from_url(cls, url: str, **kw: object) -> SqliteLedger:
        parts = urlsplit(url)
        path = url[len("sqlite:///"):] if url.startswith("sqlite:///") else ""
        path = path.split("?", 1)[0]
        if parts.netloc or not path:
            raise ConfigurationError(f"SQLite ledger URL {url!r} needs a file path: sqlite:///relative.db or "
                                     f"sqlite:////absolute/path.db")
        return cls(path, **kw)  # type: ignore[arg-type]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        if not Path(self.path).parent.is_dir():
            raise BudgetBackendUnavailable(f"SQLite ledger directory {Path(self.path).parent} does not exist")
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                               timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            _set_wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(SCHEMA)
            _add_key_expiry(conn)
        except BaseException:
            conn.close()
            raise
        self._conn, self._pid = conn, os.getpid()
        return conn

    def _tx(self, body: Callable[[sqlite3.Connection], T]) -> T:
        """Run `body` in one BEGIN IMMEDIATE transaction; store errors become BudgetBackendUnavailable."""
        with self._lock:
            try:
                conn = self._connect()
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                self._conn = None
                raise BudgetBackendUnavailable(f"SQLite ledger {self.path}: {exc}") from exc
            try:
                result = body(conn)
            except sqlite3.Error as exc:
                conn.execute("ROLLBACK")
                raise BudgetBackendUnavailable(f"SQLite ledger {self.path}: {exc}") from exc
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise BudgetBackendUnavailable(f"SQLite ledger {self.path}: commit failed: {exc}") from exc
            return result

    def _reserve(self, reservation_id: str, charges: Sequence[Charge], amount_micro: int,
                 lease_seconds: float, now: float | None) -> Reservation:
        now = self.clock() if now is None else now  # one machine: its clock is the store's
        expires_at = now + lease_seconds
        def body(conn: sqlite3.Connection) -> Reservation:
            self._expire(conn, now)
            row = conn.execute("SELECT amount FROM budget_reservations WHERE id = ?", (reservation_id,)).fetchone()
            if row is not None:
                return Reservation(reservation_id=reservation_id, amount_micro=row[0], status="existing")
            for charge in charges:
                state = _state(conn, charge.key)
                if state.spent + state.reserved + amount_micro > charge.limit_micro:
                    raise exceeded(charge, state, amount_micro)
            idle_expiry = expires_at + self.retention_seconds
            conn.executemany(
                "INSERT INTO budget_keys (key, reserved, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET reserved = reserved + excluded.reserved, "
                "expires_at = max(coalesce(expires_at, 0), excluded.expires_at)",
                [(c.key, amount_micro, key_expiry(c.key, idle_expiry)) for c in charges])
            conn.execute("INSERT INTO budget_reservations (id, keys, amount, expires_at, status) "
                         "VALUES (?, ?, ?, ?, 'held')",
                         (reservation_id, json.dumps([c.key for c in charges]), amount_micro, expires_at))
            return Reservation(reservation_id=reservation_id, amount_micro=amount_micro, status="held")

        return self._tx(body)

    def _settle(self, reservation_id: str, actual_micro: int, now: float | None) -> Settlement:
        now = self.clock() if now is None else now
        def body(conn: sqlite3.Connection) -> Settlement:
            self._expire(conn, now)
            row = conn.execute("SELECT keys, amount, status FROM budget_reservations WHERE id = ?",
                               (reservation_id,)).fetchone()
            if row is None:
                return Settlement(reservation_id=reservation_id, status="unknown", actual_micro=actual_micro)
            keys, amount, status = json.loads(row[0]), row[1], row[2]
            if status == "settled":
                return Settlement(reservation_id=reservation_id, status="duplicate",
                                  actual_micro=actual_micro)
            # an expired reservation was charged its worst case at expiry: the real cost replaces it
            held, charged = (amount, 0) if status == "held" else (0, amount)
            conn.executemany("UPDATE budget_keys SET reserved = reserved - ?, spent = spent + ? WHERE key = ?",
                             [(held, actual_micro - charged, k) for k in keys])
            conn.execute("UPDATE budget_reservations SET status = 'settled', actual = ? WHERE id = ?",
                         (actual_micro, reservation_id))
            return Settlement(reservation_id=reservation_id, status="settled" if status == "held" else "late",
                              actual_micro=actual_micro)

        return self._tx(body)

    def _states(self, keys: Sequence[str], now: float | None) -> list[BudgetState]:
        now = self.clock() if now is None else now
        def body(conn: sqlite3.Connection) -> list[BudgetState]:
            self._expire(conn, now)
            return [_state(conn, k) for k in keys]

        return self._tx(body)

    def _sweep(self, now: float | None) -> int:
        now = self.clock() if now is None else now
        return self._tx(lambda conn: self._expire(conn, now))

    def _purge(self, before: float) -> int:
        """Forget finished reservations whose lease ended before `before`, and keys past their expiry with
        nothing held on them (SQLite reuses the freed pages, so the file stops growing)."""
        now = before + self.retention_seconds

        def body(conn: sqlite3.Connection) -> int:
            self._expire(conn, now)
            conn.execute("DELETE FROM budget_keys WHERE expires_at < ? AND reserved = 0", (now,))
            return conn.execute("DELETE FROM budget_reservations WHERE status IN ('settled', 'expired') "
                                "AND expires_at < ?", (before,)).rowcount

        return self._tx(body)

    def _expire(self, conn: sqlite3.Connection, now: float) -> int:
        rows = conn.execute("SELECT id, keys, amount FROM budget_reservations "
                            "WHERE status = 'held' AND expires_at <= ?", (now,)).fetchall()
        for rid, keys, amount in rows:
            # its holder stopped answering: whether the provider billed the call is unknown, so it is
            # charged the worst case it reserved (a late settle replaces that with the real cost)
            conn.executemany("UPDATE budget_keys SET reserved = reserved - ?, spent = spent + ? WHERE key = ?",
                             [(amount, amount, k) for k in json.loads(keys)])
            conn.execute("UPDATE budget_reservations SET status = 'expired' WHERE id = ?", (rid,))
            log.warning("lease of reservation %r expired; charged its worst case of %d micro-USD", rid, amount)
        self.counters["expired_charged"] += len(rows)
        return len(rows)


def _add_key_expiry(conn: sqlite3.Connection) -> None:
    """Give a key table made before keys expired its `expires_at` column (NULL: kept until reserved again)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(budget_keys)")}
    if "expires_at" not in columns:
        try:
            conn.execute("ALTER TABLE budget_keys ADD COLUMN expires_at REAL")
        except sqlite3.OperationalError as exc:  # another process added it first
            if "duplicate column" not in str(exc):
                raise


def _state(conn: sqlite3.Connection, key: str) -> BudgetState:
    row = conn.execute("SELECT spent, reserved FROM budget_keys WHERE key = ?", (key,)).fetchone()
    return BudgetState(key=key, spent=row[0], reserved=row[1]) if row else BudgetState(key)
