"""A team's shared incident memory on PostgreSQL: the same records, recall and read-only mode as the
SQLite `MemoryStore`, in a schema of its own. Vectors are stored as bytes and ranked in process (no
pgvector needed): one matrix product over the team's incidents."""

from __future__ import annotations

import re
import threading
from datetime import datetime
from typing import Any

import numpy as np

from cascadeflow import ConfigurationError

from .embedding import Embedder, default_embedder
from .store import (
    DEFAULT_HALF_LIFE_DAYS,
    IncidentRecord,
    Recall,
    current_vectors,
    rank,
    row_values,
)

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_COLUMNS = ("id, title, symptoms, services, root_cause, category, deploy_version, remediation, fix_worked, "
            "minutes_to_resolve, occurred_at, source, embedding, embedder")
_TABLE = """
create table if not exists {schema}.incidents (
  id text primary key, title text not null, symptoms text not null, services text not null,
  root_cause text not null, category text not null, deploy_version text, remediation text not null,
  fix_worked integer, minutes_to_resolve double precision, occurred_at text not null, source text not null,
  embedding bytea not null, embedder text not null
)"""


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise ConfigurationError('a PostgreSQL memory needs psycopg: pip install "cascadeflow[postgres]"') from exc
    return psycopg


class PostgresMemoryStore:
    """`PostgresMemoryStore("postgresql://...", schema="incident_memory")`; `read_only=True` for evaluation."""

    def __init__(self, dsn: str, *, schema: str = "incident_memory", embedder: Embedder | None = None,
                 read_only: bool = False):
        if not _SCHEMA_NAME.match(schema):
            raise ConfigurationError(f"schema must be a lowercase SQL identifier, got {schema!r}")
        self.schema = schema
        self.read_only = read_only
        self.embedder = embedder or default_embedder()
        self._db = _psycopg().connect(dsn, autocommit=True)
        self._lock = threading.Lock()
        if read_only:
            self._db.execute("set default_transaction_read_only = on")
        else:
            self._db.execute(f"create schema if not exists {schema}")
            self._db.execute(_TABLE.format(schema=schema))

    def close(self) -> None:
        self._db.close()

    def add(self, record: IncidentRecord) -> IncidentRecord:
        row = row_values(record, self.embedder, read_only=self.read_only, where=self.schema)
        names = [c.strip() for c in _COLUMNS.split(",")]
        updates = ", ".join(f"{c} = excluded.{c}" for c in names[1:])
        with self._lock:
            self._db.execute(
                f"insert into {self.schema}.incidents ({_COLUMNS}) values ({', '.join('%s' for _ in names)}) "
                f"on conflict (id) do update set {updates}", [row[c] for c in names])
        return record

    def _rows(self) -> list[tuple[IncidentRecord, np.ndarray]]:
        with self._lock:
            raw = self._db.execute(f"select {_COLUMNS} from {self.schema}.incidents order by occurred_at").fetchall()
        pairs, stale = current_vectors(raw, self.embedder)
        if stale and not self.read_only:
            with self._lock:
                for record, vector in stale:
                    self._db.execute(f"update {self.schema}.incidents set embedding = %s, embedder = %s "
                                     f"where id = %s", [vector.tobytes(), self.embedder.model_id, record.id])
        return pairs + stale

    def all(self) -> list[IncidentRecord]:
        return [record for record, _ in self._rows()]

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute(f"select count(*) from {self.schema}.incidents").fetchone()[0])

    def search(self, query: str, *, k: int = 3, half_life_days: float | None = DEFAULT_HALF_LIFE_DAYS,
               now: datetime | None = None) -> list[Recall]:
        return rank(self._rows(), self.embedder, query, k=k, half_life_days=half_life_days, now=now)


def open_memory(target: str, *, read_only: bool = False, schema: str = "incident_memory",
                embedder: Embedder | None = None) -> Any:
    """A SQLite file path, or a postgresql:// URL for a team's shared memory."""
    if target.startswith(("postgresql://", "postgres://")):
        return PostgresMemoryStore(target, schema=schema, embedder=embedder, read_only=read_only)
    from .store import MemoryStore

    return MemoryStore(target, embedder=embedder, read_only=read_only)
