"""PostgreSQL ledger (psycopg 3): a key table updated by conditional `UPDATE ... WHERE spent + reserved +
amount <= limit`, and a reservation table whose primary key (the reservation id) makes reserve and settle
idempotent. Key rows are locked in sorted order; a rare deadlock between lease sweeps is retried."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit, urlunsplit

from cascadeflow.budget.ledger import BaseLedger, BudgetState, Clock, Reservation, Settlement, exceeded
from cascadeflow.errors import BudgetBackendUnavailable, ConfigurationError
from cascadeflow.runtime.pipeline import Charge

log = logging.getLogger(__name__)
T = TypeVar("T")

CONNECT_TIMEOUT = 2  # seconds (libpq's minimum); the ledger backs off after a failure
RETRIES = 5  # attempts of a transaction aborted by a deadlock or serialization failure

SCHEMA = """
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {keys} (
    key text PRIMARY KEY, spent bigint NOT NULL DEFAULT 0, reserved bigint NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS {res} (
    id text PRIMARY KEY, keys text[] NOT NULL, amount bigint NOT NULL, expires_at double precision NOT NULL,
    status text NOT NULL, actual bigint);
CREATE INDEX IF NOT EXISTS {lease_index} ON {res} (expires_at) WHERE status = 'held';
"""

EXPIRE = """
WITH gone AS (
    UPDATE {res} SET status = 'expired' WHERE status = 'held' AND expires_at <= %s RETURNING keys, amount),
per_key AS (SELECT k, sum(amount) AS amount, count(*) AS n FROM gone, unnest(keys) AS k GROUP BY k),
released AS (
    UPDATE {keys} SET reserved = reserved - per_key.amount FROM per_key WHERE {keys}.key = per_key.k RETURNING 1)
SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM released)
"""


class PostgresLedger(BaseLedger):
    """Ledger in PostgreSQL, shared by every process and machine that can reach the database. One
    connection per ledger object (thread-safe under a lock; reopened after fork or a lost connection)."""

    def __init__(self, conninfo: str, *, schema: str = "public", table_prefix: str = "cascadeflow_budget_",
                 url: str = "postgresql://", fail_open: bool = False, clock: Clock | None = None):
        super().__init__(fail_open=fail_open, clock=clock)
        try:
            from psycopg import sql
        except ImportError as exc:
            raise ConfigurationError('the PostgreSQL ledger needs psycopg 3: pip install "cascadeflow[postgres]"') \
                from exc
        self.conninfo = conninfo
        self.url = url
        self.schema = schema
        names = {"schema": sql.Identifier(schema), "keys": sql.Identifier(schema, table_prefix + "keys"),
                 "res": sql.Identifier(schema, table_prefix + "reservations"),
                 "lease_index": sql.Identifier(table_prefix + "reservations_lease")}
        self._sql = {name: sql.SQL(text).format(**{k: v for k, v in names.items() if "{" + k + "}" in text})
                     for name, text in _STATEMENTS.items()}
        self._schema_sql = sql.SQL(SCHEMA).format(**names)
        self._lock = threading.Lock()
        self._conn: Any = None
        self._pid = 0

    @classmethod
    def from_url(cls, url: str, **kw: Any) -> PostgresLedger:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        schema = query.pop("schema", ["public"])[0]
        prefix = query.pop("table_prefix", ["cascadeflow_budget_"])[0]
        rest = "&".join(f"{k}={v[0]}" for k, v in query.items())
        conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, rest, ""))
        safe = urlunsplit(("postgresql", parts.hostname or "", parts.path, "", "")) if parts.password else url
        return cls(conninfo, schema=schema, table_prefix=prefix, url=safe, **kw)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _connect(self) -> Any:
        import psycopg

        if self._conn is not None and self._pid == os.getpid() and not self._conn.closed:
            return self._conn
        conn = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
        with conn.transaction():
            # concurrent CREATE ... IF NOT EXISTS can still collide in the catalog: serialise it
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('cascadeflow_budget_schema'))")
            conn.execute(self._schema_sql)
        self._conn, self._pid = conn, os.getpid()
        return conn

    def _tx(self, body: Callable[[Any], T]) -> T:
        """Run `body` in one transaction, retrying deadlocks; lost connections become BudgetBackendUnavailable."""
        import psycopg
        from psycopg import errors

        with self._lock:
            for attempt in range(RETRIES):
                try:
                    conn = self._connect()
                    with conn.transaction():
                        return body(conn)
                except (errors.DeadlockDetected, errors.SerializationFailure):
                    if attempt == RETRIES - 1:
                        raise
                    log.info("PostgreSQL ledger transaction retried after a deadlock")
                except psycopg.OperationalError as exc:
                    self._drop()
                    raise BudgetBackendUnavailable(f"PostgreSQL ledger {self.url} unreachable: {exc}") from exc
            raise AssertionError("unreachable")

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError as exc:  # the connection is already broken; nothing to save
                log.debug("closing a broken PostgreSQL connection: %s", exc)
        self._conn = None

    def _expire(self, conn: Any, now: float) -> int:
        released = conn.execute(self._sql["expire"], (now,)).fetchone()[0]
        self.counters["expired_released"] += released
        return int(released)

    def _reserve(self, reservation_id: str, charges: Sequence[Charge], amount_micro: int,
                 expires_at: float, now: float) -> Reservation:
        self._tx(lambda conn: self._expire(conn, now))  # its own transaction: see the module docstring
        keys = [c.key for c in charges]

        def body(conn: Any) -> Reservation:
            inserted = conn.execute(self._sql["insert_res"], (reservation_id, keys, amount_micro,
                                                               expires_at)).fetchone()
            if inserted is None:
                row = conn.execute(self._sql["res_amount"], (reservation_id,)).fetchone()
                return Reservation(reservation_id, int(row[0]), "existing")
            conn.execute(self._sql["seed_keys"], (keys,))
            for charge in charges:  # sorted by key in BaseLedger.reserve
                if conn.execute(self._sql["take"], (amount_micro, charge.key, amount_micro,
                                                    charge.limit_micro)).fetchone() is None:
                    row = conn.execute(self._sql["state"], (charge.key,)).fetchone()
                    raise exceeded(charge, BudgetState(charge.key, int(row[0]), int(row[1])), amount_micro)
            return Reservation(reservation_id, amount_micro, "held")

        return self._tx(body)

    def _settle(self, reservation_id: str, actual_micro: int, now: float) -> Settlement:
        self._tx(lambda conn: self._expire(conn, now))

        def body(conn: Any) -> Settlement:
            row = conn.execute(self._sql["lock_res"], (reservation_id,)).fetchone()
            if row is None:
                return Settlement(reservation_id, "unknown", actual_micro)
            keys, amount, status = row
            if status == "settled":
                return Settlement(reservation_id, "duplicate", actual_micro)
            held = int(amount) if status == "held" else 0
            for key in sorted(keys):
                conn.execute(self._sql["settle_key"], (held, actual_micro, key))
            conn.execute(self._sql["settle_res"], (actual_micro, reservation_id))
            return Settlement(reservation_id, "settled" if status == "held" else "late", actual_micro)

        return self._tx(body)

    def _states(self, keys: Sequence[str], now: float) -> list[BudgetState]:
        def body(conn: Any) -> list[BudgetState]:
            self._expire(conn, now)
            rows = {r[0]: (int(r[1]), int(r[2]))
                    for r in conn.execute(self._sql["states"], (list(keys),)).fetchall()}
            return [BudgetState(k, *rows.get(k, (0, 0))) for k in keys]

        return self._tx(body)

    def _sweep(self, now: float) -> int:
        return self._tx(lambda conn: self._expire(conn, now))

    def drop_all(self) -> None:
        """Drop this ledger's tables (tests and benchmarks)."""
        self._tx(lambda conn: conn.execute(self._sql["drop"]))


_STATEMENTS = {
    "expire": EXPIRE,
    "insert_res": "INSERT INTO {res} (id, keys, amount, expires_at, status) VALUES (%s, %s, %s, %s, 'held') "
                  "ON CONFLICT (id) DO NOTHING RETURNING id",
    "res_amount": "SELECT amount FROM {res} WHERE id = %s",
    "seed_keys": "INSERT INTO {keys} (key) SELECT unnest(%s::text[]) ON CONFLICT (key) DO NOTHING",
    "take": "UPDATE {keys} SET reserved = reserved + %s WHERE key = %s AND spent + reserved + %s <= %s RETURNING 1",
    "state": "SELECT spent, reserved FROM {keys} WHERE key = %s",
    "states": "SELECT key, spent, reserved FROM {keys} WHERE key = ANY(%s)",
    "lock_res": "SELECT keys, amount, status FROM {res} WHERE id = %s FOR UPDATE",
    "settle_key": "UPDATE {keys} SET reserved = reserved - %s, spent = spent + %s WHERE key = %s",
    "settle_res": "UPDATE {res} SET status = 'settled', actual = %s WHERE id = %s",
    "drop": "DROP TABLE IF EXISTS {keys}, {res}",
}
