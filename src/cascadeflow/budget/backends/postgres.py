"""PostgreSQL ledger (psycopg 3): a key table whose rows are locked and checked (spent + reserved + amount
<= limit) before the conditional update, and a reservation table whose primary key (the reservation id)
makes reserve and settle idempotent. Each operation is one call of a PL/pgSQL function (one round trip,
one transaction). Key rows are locked in sorted order; a rare deadlock with a lease sweep is retried."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit, urlunsplit

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
from cascadeflow.trace.redact import redact_text, redact_url

log = logging.getLogger(__name__)
T = TypeVar("T")

CONNECT_TIMEOUT = 2  # seconds (libpq's minimum); the ledger backs off after a failure
RETRIES = 5  # attempts of a transaction aborted by a deadlock or serialization failure

SCHEMA = """
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {keys} (
    key text PRIMARY KEY, spent bigint NOT NULL DEFAULT 0, reserved bigint NOT NULL DEFAULT 0);
-- when a key may be forgotten once nothing is held on it (NULL in a table made before keys expired: kept)
ALTER TABLE {keys} ADD COLUMN IF NOT EXISTS expires_at double precision;
CREATE TABLE IF NOT EXISTS {res} (
    id text PRIMARY KEY, keys text[] NOT NULL, amount bigint NOT NULL, expires_at double precision NOT NULL,
    status text NOT NULL, actual bigint);
CREATE INDEX IF NOT EXISTS {lease_index} ON {res} (expires_at) WHERE status = 'held';

-- p_now NULL: the server's clock, so processes whose clocks disagree judge leases alike. A lease that passed
-- is charged its worst case: its holder stopped answering, so whether the call was billed is unknown.
CREATE OR REPLACE FUNCTION {expire}(p_now double precision) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE rec record; k text; n integer := 0;
  v_now double precision := COALESCE(p_now, extract(epoch FROM clock_timestamp()));
BEGIN
  FOR rec IN UPDATE {res} SET status = 'expired' WHERE status = 'held' AND expires_at <= v_now
             RETURNING keys, amount LOOP
    FOREACH k IN ARRAY rec.keys LOOP
      UPDATE {keys} SET reserved = reserved - rec.amount, spent = spent + rec.amount WHERE key = k;
    END LOOP;
    n := n + 1;
  END LOOP;
  RETURN n;
END $$;

-- p_keys arrive sorted, so concurrent reservations lock key rows in one order. p_window_ends: each key's
-- calendar window end plus grace (0 without one); a key is kept until then, and p_retention past its lease.
CREATE OR REPLACE FUNCTION {reserve}(p_id text, p_keys text[], p_limits bigint[], p_amount bigint,
    p_lease double precision, p_now double precision, p_window_ends double precision[],
    p_retention double precision)
RETURNS TABLE (status text, idx integer, spent bigint, reserved bigint, released integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE i integer; s bigint; r bigint; n integer; existing bigint;
  v_now double precision := COALESCE(p_now, extract(epoch FROM clock_timestamp()));
BEGIN
  n := {expire}(v_now);
  SELECT x.amount INTO existing FROM {res} x WHERE x.id = p_id;
  IF FOUND THEN
    RETURN QUERY SELECT 'existing'::text, 0, existing, 0::bigint, n; RETURN;
  END IF;
  INSERT INTO {keys} (key) SELECT unnest(p_keys) ON CONFLICT (key) DO NOTHING;
  FOR i IN 1 .. array_length(p_keys, 1) LOOP
    SELECT k.spent, k.reserved INTO s, r FROM {keys} k WHERE k.key = p_keys[i] FOR UPDATE;
    IF s + r + p_amount > p_limits[i] THEN
      RETURN QUERY SELECT 'exceeded'::text, i, s, r, n; RETURN;
    END IF;
  END LOOP;
  SELECT x.amount INTO existing FROM {res} x WHERE x.id = p_id;  -- a concurrent twin may have won
  IF FOUND THEN
    RETURN QUERY SELECT 'existing'::text, 0, existing, 0::bigint, n; RETURN;
  END IF;
  UPDATE {keys} SET reserved = {keys}.reserved + p_amount,
    expires_at = GREATEST(COALESCE({keys}.expires_at, 0), v_now + p_lease + p_retention,
                          p_window_ends[array_position(p_keys, {keys}.key)])
    WHERE key = ANY(p_keys);
  INSERT INTO {res} (id, keys, amount, expires_at, status)
    VALUES (p_id, p_keys, p_amount, v_now + p_lease, 'held');
  RETURN QUERY SELECT 'held'::text, 0, p_amount, 0::bigint, n;
END $$;

CREATE OR REPLACE FUNCTION {settle}(p_id text, p_actual bigint, p_now double precision) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE v_keys text[]; v_amount bigint; v_status text; v_expires double precision; held bigint; k text;
  v_now double precision := COALESCE(p_now, extract(epoch FROM clock_timestamp()));
BEGIN
  SELECT x.keys, x.amount, x.status, x.expires_at INTO v_keys, v_amount, v_status, v_expires
    FROM {res} x WHERE x.id = p_id FOR UPDATE;
  IF NOT FOUND THEN RETURN 'unknown'; END IF;
  IF v_status = 'settled' THEN RETURN 'duplicate'; END IF;
  -- held: the reservation becomes the real cost; expired: the worst case charged then is replaced by it
  held := CASE WHEN v_status = 'held' THEN v_amount ELSE 0 END;
  FOREACH k IN ARRAY v_keys LOOP
    UPDATE {keys} SET reserved = reserved - held, spent = spent + p_actual - (v_amount - held) WHERE key = k;
  END LOOP;
  UPDATE {res} SET status = 'settled', actual = p_actual WHERE id = p_id;
  -- past its lease but not yet swept: settled at its real cost, reported late
  RETURN CASE WHEN v_status = 'held' AND v_expires > v_now THEN 'settled' ELSE 'late' END;
END $$;
"""

class PostgresLedger(BaseLedger):
    """Ledger in PostgreSQL, shared by every process and machine that can reach the database. One
    connection per ledger object (thread-safe under a lock; reopened after fork or a lost connection).
    Leases are judged by the server's clock (`clock_timestamp()`) unless a `clock` is injected."""

    has_store_clock = True

    def __init__(self, conninfo: str, *, schema: str = "public", table_prefix: str = "cascadeflow_budget_",
                 url: str = "postgresql://", fail_open: bool = False, clock: Clock | None = None,
                 synchronous_commit: bool = True, retention_seconds: float = RETENTION_SECONDS):
        super().__init__(fail_open=fail_open, clock=clock, retention_seconds=retention_seconds)
        self.synchronous_commit = synchronous_commit
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
                 "lease_index": sql.Identifier(table_prefix + "reservations_lease"),
                 "expire": sql.Identifier(schema, table_prefix + "expire"),
                 # a new name for each new signature, so older processes keep their own function
                 "reserve": sql.Identifier(schema, table_prefix + "reserve_expiring"),
                 "settle": sql.Identifier(schema, table_prefix + "settle")}
        self._sql = {name: sql.SQL(text).format(**names) for name, text in _STATEMENTS.items()}
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
        sync = query.pop("synchronous_commit", ["on"])[0].lower()
        if sync not in ("on", "off"):
            raise ConfigurationError(f"synchronous_commit in {url!r} must be 'on' or 'off', got {sync!r}")
        rest = "&".join(f"{k}={v[0]}" for k, v in query.items())
        conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, rest, ""))
        safe = redact_url(url)
        return cls(conninfo, schema=schema, table_prefix=prefix, url=safe, synchronous_commit=sync == "on", **kw)

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
        if not self.synchronous_commit:
            # commits return before the WAL reaches disk: a database crash may lose the last ~0.6 s of
            # reservations (like Redis's default persistence); no corruption, no effect on a client crash
            conn.execute("SET synchronous_commit = off")
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
                    raise BudgetBackendUnavailable(redact_text(f"PostgreSQL ledger {self.url} unreachable: {exc}")) from exc
            raise AssertionError("unreachable")

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError as exc:  # the connection is already broken; nothing to save
                log.debug("closing a broken PostgreSQL connection: %s", exc)
        self._conn = None

    def _reserve(self, reservation_id: str, charges: Sequence[Charge], amount_micro: int,
                 lease_seconds: float, now: float | None) -> Reservation:
        keys, limits = [c.key for c in charges], [c.limit_micro for c in charges]
        window_ends = [key_expiry(key, 0.0) for key in keys]
        status, idx, spent, reserved, released = self._tx(lambda conn: conn.execute(
            self._sql["reserve"], (reservation_id, keys, limits, amount_micro, lease_seconds, now, window_ends,
                                   self.retention_seconds)).fetchone())
        self.counters["expired_charged"] += released
        if status == "exceeded":
            charge = charges[idx - 1]
            raise exceeded(charge, BudgetState(key=charge.key, spent=int(spent),
                                               reserved=int(reserved)), amount_micro)
        return Reservation(reservation_id=reservation_id, amount_micro=int(spent), status=status)

    def _settle(self, reservation_id: str, actual_micro: int, now: float | None) -> Settlement:
        # no sweep of other leases here (reserve does that); this reservation's own lease decides "late"
        status = self._tx(lambda conn: conn.execute(self._sql["settle"],
                                                    (reservation_id, actual_micro, now)).fetchone())
        return Settlement(reservation_id=reservation_id, status=status[0], actual_micro=actual_micro)

    def _states(self, keys: Sequence[str], now: float | None) -> list[BudgetState]:
        def body(conn: Any) -> list[BudgetState]:
            self.counters["expired_charged"] += conn.execute(self._sql["expire"], (now,)).fetchone()[0]
            rows = {r[0]: (int(r[1]), int(r[2]))
                    for r in conn.execute(self._sql["states"], (list(keys),)).fetchall()}
            return [BudgetState(k, *rows.get(k, (0, 0))) for k in keys]

        return self._tx(body)

    def _sweep(self, now: float | None) -> int:
        released = int(self._tx(lambda conn: conn.execute(self._sql["expire"], (now,)).fetchone()[0]))
        self.counters["expired_charged"] += released
        return released

    def _purge(self, before: float) -> int:
        """Forget finished reservations whose lease ended before `before`, and keys past their expiry with
        nothing held on them (PostgreSQL's autovacuum reuses the space, so the tables stop growing)."""
        now = before + self.retention_seconds

        def body(conn: Any) -> int:
            conn.execute(self._sql["purge_keys"], (now,))
            return int(conn.execute(self._sql["purge"], (before,)).rowcount)

        return self._tx(body)

    def drop_all(self) -> None:
        """Drop this ledger's tables (tests and benchmarks)."""
        self._tx(lambda conn: conn.execute(self._sql["drop"]))


_STATEMENTS = {
    "expire": "SELECT {expire}(%s::double precision)",
    "reserve": "SELECT * FROM {reserve}(%s, %s::text[], %s::bigint[], %s, %s::double precision, "
               "%s::double precision, %s::double precision[], %s::double precision)",
    "settle": "SELECT {settle}(%s, %s, %s::double precision)",
    "purge": "DELETE FROM {res} WHERE status <> 'held' AND expires_at < %s",
    "purge_keys": "DELETE FROM {keys} WHERE expires_at < %s AND reserved = 0",
    "states": "SELECT key, spent, reserved FROM {keys} WHERE key = ANY(%s)",
    "drop": "DROP TABLE IF EXISTS {keys}, {res}; DROP FUNCTION IF EXISTS {reserve}, {settle}, {expire}",
}
