"""A small durable queue of deferred work (SQLite): what a budget refused now is enqueued with a reason
and drained when budget returns. Delivery is at-least-once: an item leaves the queue only after its
handler returned; a crash mid-drain leaves it leased, and it becomes visible again when the lease passes."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cascadeflow.budget.ledger import Clock
from cascadeflow.errors import ConfigurationError

log = logging.getLogger(__name__)

DEFAULT_PATH = "cascadeflow-deferred.sqlite3"

SCHEMA = """
CREATE TABLE IF NOT EXISTS deferred (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, payload TEXT NOT NULL,
    reason TEXT NOT NULL, enqueued_at REAL NOT NULL, visible_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT);
"""
_COLUMNS = "seq, id, payload, reason, enqueued_at, visible_at, attempts, last_error"


@dataclass(frozen=True, slots=True)
class DeferredItem:
    """One queued piece of work. `attempts` counts how often a drain handed it to a handler."""

    id: str
    payload: dict[str, Any]
    reason: str
    enqueued_at: float
    visible_at: float
    attempts: int
    last_error: str | None
    seq: int


@dataclass(slots=True)
class DrainReport:
    """What one drain did: ids handled (and removed), ids whose handler raised (kept, with the error)."""

    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


class DeferredQueue:
    """Durable FIFO in a SQLite file, safe across threads and processes. `visibility_seconds` is how long
    a drained item stays hidden from other drains while its handler runs (its lease)."""

    def __init__(self, path: str | os.PathLike[str] = DEFAULT_PATH, *, visibility_seconds: float = 300.0,
                 clock: Clock | None = None):
        if not isinstance(visibility_seconds, (int, float)) or visibility_seconds <= 0:
            raise ConfigurationError(f"visibility_seconds must be a positive number, got {visibility_seconds!r}")
        self.path = str(path)
        if self.path != ":memory:" and not Path(self.path).parent.is_dir():
            raise ConfigurationError(f"deferred queue directory {Path(self.path).parent} does not exist")
        self.visibility_seconds = float(visibility_seconds)
        self.clock: Clock = clock or time.time
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def enqueue(self, payload: dict[str, Any], reason: str = "") -> str:
        """Store `payload` (a JSON-serialisable dict) with a reason; returns its stable id."""
        if not isinstance(payload, dict):
            raise ConfigurationError(f"a deferred payload must be a dict, got {type(payload).__name__}")
        try:
            body = json.dumps(payload, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"a deferred payload must be JSON-serialisable: {exc}") from None
        if not isinstance(reason, str):
            raise ConfigurationError(f"reason must be a string, got {reason!r}")
        item_id = uuid.uuid4().hex
        now = self.clock()
        with self._lock:
            self._conn.execute("INSERT INTO deferred (id, payload, reason, enqueued_at, visible_at) "
                               "VALUES (?, ?, ?, ?, ?)", (item_id, body, reason, now, now))
        return item_id

    def list(self) -> list[DeferredItem]:
        """Every queued item in FIFO order, including those currently leased by a drain."""
        with self._lock:
            rows = self._conn.execute(f"SELECT {_COLUMNS} FROM deferred ORDER BY seq").fetchall()
        return [_item(row) for row in rows]

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM deferred").fetchone()[0])

    def drain(self, handler: Callable[[DeferredItem], Any], limit: int | None = None) -> DrainReport:
        """Hand visible items to `handler` in FIFO order, removing each only after its handler returned.
        A handler that raises leaves its item queued (visible again at once, error recorded) and the drain
        moves on; each item is tried at most once per drain. `limit` caps the items handed out."""
        report, cursor = DrainReport(), 0
        while limit is None or len(report.done) + len(report.failed) < limit:
            item = self._claim(cursor)
            if item is None:
                break
            cursor = item.seq
            try:
                handler(item)
            except Exception as exc:  # noqa: BLE001 - any handler failure keeps the item queued
                self._fail(item, exc, report)
            else:
                self._ack(item, report)
        return report

    async def adrain(self, handler: Callable[[DeferredItem], Awaitable[Any] | Any],
                     limit: int | None = None) -> DrainReport:
        """`drain` with an async (or sync) handler; store access runs in a worker thread."""
        report, cursor = DrainReport(), 0
        while limit is None or len(report.done) + len(report.failed) < limit:
            item = await asyncio.to_thread(self._claim, cursor)
            if item is None:
                break
            cursor = item.seq
            try:
                result = handler(item)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:  # noqa: BLE001 - any handler failure keeps the item queued
                await asyncio.to_thread(self._fail, item, exc, report)
            else:
                await asyncio.to_thread(self._ack, item, report)
        return report

    def _claim(self, after_seq: int) -> DeferredItem | None:
        """Lease the oldest visible item after `after_seq` (one atomic UPDATE ... RETURNING)."""
        now = self.clock()
        with self._lock:
            row = self._conn.execute(
                f"UPDATE deferred SET visible_at = ?, attempts = attempts + 1 WHERE seq = ("
                f"SELECT seq FROM deferred WHERE visible_at <= ? AND seq > ? ORDER BY seq LIMIT 1) "
                f"RETURNING {_COLUMNS}", (now + self.visibility_seconds, now, after_seq)).fetchone()
        return _item(row) if row is not None else None

    def _ack(self, item: DeferredItem, report: DrainReport) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM deferred WHERE id = ?", (item.id,))
        report.done.append(item.id)

    def _fail(self, item: DeferredItem, exc: Exception, report: DrainReport) -> None:
        error = f"{type(exc).__name__}: {exc}"
        log.warning("deferred item %s failed in its handler and stays queued: %s", item.id, error)
        with self._lock:
            self._conn.execute("UPDATE deferred SET visible_at = ?, last_error = ? WHERE id = ?",
                               (self.clock(), error, item.id))
        report.failed[item.id] = error


def _item(row: tuple[Any, ...]) -> DeferredItem:
    seq, item_id, payload, reason, enqueued_at, visible_at, attempts, last_error = row
    return DeferredItem(id=item_id, payload=json.loads(payload), reason=reason, enqueued_at=enqueued_at,
                        visible_at=visible_at, attempts=attempts, last_error=last_error, seq=seq)
