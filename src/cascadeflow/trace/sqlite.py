"""The SQLite audit sink: one row per record in a WAL database, indexed for the questions people ask."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Self

from cascadeflow.errors import ConfigurationError
from cascadeflow.trace.records import AuditRecord
from cascadeflow.trace.redact import record_line

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    timestamp TEXT NOT NULL,
    request_id TEXT NOT NULL,
    run_id TEXT,
    user_id TEXT,
    model TEXT,
    action TEXT NOT NULL,
    cost_usd REAL NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_timestamp ON audit (timestamp);
CREATE INDEX IF NOT EXISTS audit_run_id ON audit (run_id);
CREATE INDEX IF NOT EXISTS audit_user_id ON audit (user_id);
CREATE INDEX IF NOT EXISTS audit_model ON audit (model);
CREATE INDEX IF NOT EXISTS audit_action ON audit (action);
"""

INDEXED_COLUMNS = ("run_id", "user_id", "model", "action")
SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")


def _connect(path: Path, busy_timeout_s: float, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    return conn


class SqliteSink:
    """Insert each audit record as a row (indexed timestamp, run_id, user_id, model, action + the JSON).

    Safe with many threads (one connection behind a lock) and many processes (WAL, busy timeout).
    synchronous="NORMAL" survives process crashes; "FULL" also survives power loss.
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_s: float = 30.0,
                 synchronous: str = "NORMAL", record_content: bool = False):
        if synchronous.upper() not in SYNCHRONOUS:
            raise ConfigurationError(f"synchronous must be one of {', '.join(SYNCHRONOUS)}, got {synchronous!r}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.record_content = record_content
        self._busy_timeout_s = busy_timeout_s
        self._synchronous = synchronous.upper()
        self._lock = threading.Lock()
        self._pid = -1
        self._conn: sqlite3.Connection | None = None
        self._connection().executescript(SCHEMA)

    def __repr__(self) -> str:
        return f"SqliteSink({str(self.path)!r})"

    def __getstate__(self) -> dict[str, object]:
        # Picklable for worker processes: the connection is reopened in the receiving process.
        return {"path": self.path, "record_content": self.record_content,
                "_busy_timeout_s": self._busy_timeout_s, "_synchronous": self._synchronous}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._pid = -1
        self._conn = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():  # a forked child must not share the connection
            self._conn = _connect(self.path, self._busy_timeout_s, self._synchronous)
            self._pid = os.getpid()
        return self._conn

    def write(self, record: AuditRecord) -> None:
        line = record_line(record, record_content=self.record_content)
        row = (record.timestamp, record.request_id, record.run_id, record.user_id,
               record.model_selected or record.model_requested, record.action, record.cost_usd, line)
        with self._lock:
            self._connection().execute(
                "INSERT INTO audit (timestamp, request_id, run_id, user_id, model, action, cost_usd, record) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def filter_clause(since: str | None, until: str | None,
                 equals: Mapping[str, str | None] | None = None) -> tuple[str, list[Any]]:
    """` WHERE` on the records' columns equal to the given values (None: not filtered) and on their
    timestamps (inclusive ISO bounds), with its `?` parameters; empty when nothing filters."""
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (equals or {}).items():
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if since is not None:
        clauses.append("timestamp >= ?")
        params.append(since)
    if until is not None:
        clauses.append("timestamp <= ?")
        params.append(until)
    return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), params


def read_sqlite(path: str | os.PathLike[str], *, since: str | None = None, until: str | None = None,
                **equals: str | None) -> Iterator[dict[str, Any]]:
    """Records from a SqliteSink database, oldest first, filtered on indexed columns in SQL.

    `equals` takes run_id, user_id, model, action; since/until compare ISO timestamps (inclusive).
    """
    unknown = set(equals) - set(INDEXED_COLUMNS)
    if unknown:
        raise ConfigurationError(f"cannot filter on {sorted(unknown)}; indexed columns: {INDEXED_COLUMNS}")
    if not Path(path).exists():
        raise ConfigurationError(f"no audit database at {path}")
    where, params = filter_clause(since, until, equals)
    conn = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)
    try:
        for (text,) in conn.execute(f"SELECT record FROM audit{where} ORDER BY id", params):
            yield json.loads(text)
    finally:
        conn.close()
