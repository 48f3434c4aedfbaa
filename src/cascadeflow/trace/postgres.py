"""The PostgreSQL audit sink: one row per record in a table shared by every process and machine of a fleet.

Each record is one autocommitted INSERT, so any number of writers append at once without a lock of ours and
a record the server acknowledged is never lost; a failed INSERT raises, and the runtime's audit delivery
spools the record and writes it again once the server is back.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit, urlunsplit

from cascadeflow.errors import ConfigurationError
from cascadeflow.trace.records import AuditRecord
from cascadeflow.trace.redact import record_line, redact_text, redact_url

POSTGRES_SCHEMES = ("postgres://", "postgresql://")
DEFAULT_TABLE = "cascadeflow_audit"
CONNECT_TIMEOUT = 5  # seconds
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

SCHEMA = """
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {table} (
    id bigserial PRIMARY KEY,
    timestamp text NOT NULL,
    request_id text NOT NULL,
    run_id text,
    user_id text,
    model text,
    action text NOT NULL,
    cost_usd double precision NOT NULL,
    record jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS {timestamp_index} ON {table} (timestamp);
CREATE INDEX IF NOT EXISTS {user_index} ON {table} (user_id);
CREATE INDEX IF NOT EXISTS {model_index} ON {table} (model);
"""

INSERT = ("INSERT INTO {table} (timestamp, request_id, run_id, user_id, model, action, cost_usd, record) "
          "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)")


def is_postgres(source: str | os.PathLike[str]) -> bool:
    return str(source).startswith(POSTGRES_SCHEMES)


def check_identifier(name: str, what: str) -> str:
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise ConfigurationError(f"{what} {name!r} must be a plain SQL identifier (letters, digits, _; at most "
                                 "63 characters, not starting with a digit)")
    return name


def split_url(url: str) -> tuple[str, str, str]:
    """`postgresql://user@host/db?schema=s&table=t` -> (the URL without our parameters, schema, table)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    schema = query.pop("schema", ["public"])[0]
    table = query.pop("table", [DEFAULT_TABLE])[0]
    rest = "&".join(f"{name}={value}" for name, values in query.items() for value in values)
    conninfo = urlunsplit((parts.scheme, parts.netloc, parts.path, rest, parts.fragment))
    return conninfo, check_identifier(schema, "schema"), check_identifier(table, "table")


class PostgresSink:
    """Insert each audit record as a row (indexed timestamp, user_id, model + the JSON record as jsonb).

    `url` is `postgresql://user@host:5432/db`, optionally with `?schema=...&table=...` (default
    `public.cascadeflow_audit`). One connection per process (reopened after fork or a lost connection),
    shared by its threads under a lock. Prompts and answers are written only with record_content=True.
    """

    def __init__(self, url: str, *, schema: str | None = None, table: str | None = None,
                 record_content: bool = False):
        try:
            import psycopg
        except ImportError:
            raise ConfigurationError('the PostgreSQL audit sink needs psycopg 3: pip install "cascadeflow[postgres]"') \
                from None
        if not is_postgres(url):
            raise ConfigurationError(f"not a PostgreSQL URL: {redact_url(url)!r}; write postgresql://user@host/db")
        self.conninfo, url_schema, url_table = split_url(url)
        self.schema = check_identifier(schema, "schema") if schema is not None else url_schema
        self.table = check_identifier(table, "table") if table is not None else url_table
        self.url = redact_url(url)
        self.record_content = record_content
        self._lock = threading.Lock()
        self._pid = -1
        self._conn: Any = None
        self._insert: Any = None
        with self._lock:
            try:
                self._connection()
            except psycopg.OperationalError as exc:
                raise ConfigurationError(f"cannot open the PostgreSQL audit table at {self.url}: "
                                         f"{redact_text(str(exc).strip())}") from None

    def __repr__(self) -> str:
        return f"PostgresSink({self.url!r}, table={self.schema}.{self.table})"

    def __getstate__(self) -> dict[str, object]:
        # Picklable for worker processes: the connection is reopened in the receiving process.
        return {"conninfo": self.conninfo, "schema": self.schema, "table": self.table, "url": self.url,
                "record_content": self.record_content}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._pid, self._conn, self._insert = -1, None, None

    def _connection(self) -> Any:
        """The process's connection (lock held), opened and the table created on first use."""
        if self._conn is not None and self._pid == os.getpid() and not self._conn.closed:
            return self._conn
        import psycopg
        from psycopg import sql

        conn = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
        names = {"schema": sql.Identifier(self.schema), "table": sql.Identifier(self.schema, self.table),
                 "timestamp_index": sql.Identifier(f"{self.table}_timestamp"),
                 "user_index": sql.Identifier(f"{self.table}_user_id"),
                 "model_index": sql.Identifier(f"{self.table}_model")}
        with conn.transaction():
            # many processes start at once: one creates the table, the others wait and find it
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('cascadeflow_audit_schema'))")
            conn.execute(sql.SQL(SCHEMA).format(**names))
        self._insert = sql.SQL(INSERT).format(table=names["table"])
        self._conn, self._pid = conn, os.getpid()
        return conn

    def write(self, record: AuditRecord) -> None:
        """Insert one record; returns once the server has committed it (raises if it could not)."""
        line = record_line(record, record_content=self.record_content)
        row = (record.timestamp, record.request_id, record.run_id, record.user_id,
               record.model_selected or record.model_requested, record.action, record.cost_usd, line)
        with self._lock:
            conn = self._connection()
            try:
                conn.execute(self._insert, row)
            except Exception:
                self._discard()  # a broken connection is reopened on the next write
                raise

    def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and self._pid == os.getpid():
            with contextlib.suppress(Exception):  # closing a broken connection may fail as well
                conn.close()

    def close(self) -> None:
        with self._lock:
            self._discard()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
