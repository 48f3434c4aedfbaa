"""The incident memory: past incidents in SQLite (one file, the embedded default) with their embeddings,
recalled by meaning plus keywords, scored down with age.

Recall score = (0.75 * cosine similarity + 0.25 * keyword overlap) * recency, where recency is
0.5 ** (age_days / half_life_days) (default half-life 90 days: an incident from a year ago counts about
1/16 as much as today's twin). `half_life_days=None` turns decay off. A read-only store refuses writes,
which is how evaluation runs guarantee they never write into a memory."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from cascadeflow import ConfigurationError, InvalidRequestError

from .embedding import Embedder, default_embedder

SEMANTIC_WEIGHT, KEYWORD_WEIGHT = 0.75, 0.25
DEFAULT_HALF_LIFE_DAYS = 90.0
_WORD = re.compile(r"[a-z0-9][a-z0-9_.:-]{2,}")
_SCHEMA = """
create table if not exists incidents (
  id text primary key, title text not null, symptoms text not null, services text not null,
  root_cause text not null, category text not null, deploy_version text, remediation text not null,
  fix_worked integer, minutes_to_resolve real, occurred_at text not null, source text not null,
  embedding blob not null, embedder text not null
)"""


class ReadOnlyMemory(PermissionError):
    """A write to a memory opened read-only (evaluation runs)."""


@dataclass(frozen=True, slots=True)
class IncidentRecord:
    title: str
    symptoms: str
    root_cause: str
    category: str
    remediation: str
    services: tuple[str, ...] = ()
    deploy_version: str | None = None
    fix_worked: bool | None = None
    minutes_to_resolve: float | None = None
    occurred_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    source: str = "investigation"
    id: str = field(default_factory=lambda: "INC-" + uuid.uuid4().hex[:8])

    def text(self) -> str:
        """What recall compares against: the symptoms first, then the cause."""
        return f"{self.title}. {self.symptoms}. services: {' '.join(self.services)}. {self.root_cause}"

    def age_days(self, now: datetime) -> float:
        occurred = datetime.fromisoformat(self.occurred_at)
        if occurred.tzinfo is None:
            occurred = occurred.replace(tzinfo=UTC)
        return max(0.0, (now - occurred).total_seconds() / 86400)


@dataclass(frozen=True, slots=True, kw_only=True)
class Recall:
    record: IncidentRecord
    score: float
    similarity: float
    keyword: float
    recency: float


def keywords(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def recency(age_days: float, half_life_days: float | None) -> float:
    return 1.0 if half_life_days is None else 0.5 ** (age_days / half_life_days)


class MemoryStore:
    """SQLite-backed memory; `read_only=True` for evaluation. Thread-safe for one process."""

    def __init__(self, path: str | Path, *, embedder: Embedder | None = None, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        self.embedder = embedder or default_embedder()
        if read_only and not self.path.exists():
            raise ConfigurationError(f"memory {self.path} does not exist; a read-only memory must exist")
        uri = f"file:{self.path}?mode=ro" if read_only else str(self.path)
        self._db = sqlite3.connect(uri, uri=read_only, check_same_thread=False)
        self._lock = threading.Lock()
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._db:
                self._db.execute(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def add(self, record: IncidentRecord) -> IncidentRecord:
        row = row_values(record, self.embedder, read_only=self.read_only, where=str(self.path))
        with self._lock, self._db:
            self._db.execute(
                "insert or replace into incidents values (:id, :title, :symptoms, :services, :root_cause, "
                ":category, :deploy_version, :remediation, :fix_worked, :minutes_to_resolve, :occurred_at, "
                ":source, :embedding, :embedder)", row)
        return record

    def _rows(self) -> list[tuple[IncidentRecord, np.ndarray]]:
        with self._lock:
            raw = self._db.execute("select * from incidents order by occurred_at").fetchall()
        pairs, stale = current_vectors(raw, self.embedder)
        if stale:
            self._store_vectors([r for r, _ in stale], np.vstack([v for _, v in stale]))
        return pairs + stale

    def _store_vectors(self, records: list[IncidentRecord], vectors: np.ndarray) -> None:
        if self.read_only:
            return  # recomputed for this session only
        with self._lock, self._db:
            self._db.executemany("update incidents set embedding = ?, embedder = ? where id = ?",
                                 [(v.tobytes(), self.embedder.model_id, r.id) for r, v in zip(records, vectors,
                                                                                            strict=True)])

    def all(self) -> list[IncidentRecord]:
        return [record for record, _ in self._rows()]

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("select count(*) from incidents").fetchone()[0])

    def search(self, query: str, *, k: int = 3, half_life_days: float | None = DEFAULT_HALF_LIFE_DAYS,
               now: datetime | None = None) -> list[Recall]:
        """The k best matches by meaning and keywords, each scored down with its age."""
        return rank(self._rows(), self.embedder, query, k=k, half_life_days=half_life_days, now=now)


def record_from_row(r: Sequence) -> IncidentRecord:
    """An IncidentRecord from a row in the table's column order (SQLite and PostgreSQL alike)."""
    return IncidentRecord(id=r[0], title=r[1], symptoms=r[2], services=tuple(json.loads(r[3])), root_cause=r[4],
                          category=r[5], deploy_version=r[6], remediation=r[7],
                          fix_worked=None if r[8] is None else bool(r[8]), minutes_to_resolve=r[9],
                          occurred_at=r[10], source=r[11])


def current_vectors(raw: Sequence[Sequence], embedder: Embedder) -> tuple[list, list]:
    """(record, vector) pairs of rows in the table's column order, split into those embedded by this
    embedder and the stale ones, re-embedded now: vectors of different models are never compared."""
    pairs, stale = [], []
    for r in raw:
        record = record_from_row(r)
        if r[13] == embedder.model_id:
            pairs.append((record, np.frombuffer(bytes(r[12]), dtype=np.float32)))
        else:
            stale.append(record)
    if not stale:
        return pairs, []
    vectors = embedder.embed([record.text() for record in stale]).astype(np.float32)
    return pairs, list(zip(stale, vectors, strict=True))


def row_values(record: IncidentRecord, embedder: Embedder, *, read_only: bool, where: str) -> dict:
    """The column values of a record, its vector included, for an insert into a writable memory."""
    if read_only:
        raise ReadOnlyMemory(f"memory {where} is read-only (evaluation runs never write into it)")
    if not record.title.strip() or not record.root_cause.strip():
        raise InvalidRequestError("an incident needs a title and a root cause to be remembered")
    vector = embedder.embed([record.text()])[0].astype(np.float32)
    row = {**asdict(record), "embedder": embedder.model_id, "embedding": vector.tobytes()}
    row["services"] = json.dumps(list(record.services))
    row["fix_worked"] = None if record.fix_worked is None else int(record.fix_worked)
    return row


def rank(rows: list[tuple[IncidentRecord, np.ndarray]], embedder: Embedder, query: str, *, k: int,
         half_life_days: float | None, now: datetime | None) -> list[Recall]:
    """Score every remembered incident against the query; the k best, highest first."""
    if not rows or not query.strip():
        return []
    now = now or datetime.now(UTC)
    similarities = np.vstack([v for _, v in rows]) @ embedder.embed([query])[0]
    words = keywords(query)
    recalls = []
    for (record, _), sim in zip(rows, similarities, strict=True):
        overlap = len(words & keywords(record.text())) / len(words) if words else 0.0
        decay = recency(record.age_days(now), half_life_days)
        score = (SEMANTIC_WEIGHT * max(0.0, float(sim)) + KEYWORD_WEIGHT * overlap) * decay
        recalls.append(Recall(record=record, score=score, similarity=float(sim), keyword=overlap,
                              recency=decay))
    return sorted(recalls, key=lambda r: r.score, reverse=True)[:k]


class MemorySystem(MemoryStore):
    """The memory as the IncidentOS write-up opens it: `MemorySystem(folder)` keeps `incidents.sqlite` in
    that folder (a file path is used as is)."""

    def __init__(self, location: str | Path = ".incidents", **kw: Any):
        path = Path(location)
        super().__init__(path / "incidents.sqlite" if path.suffix == "" else path, **kw)
