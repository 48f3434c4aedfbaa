"""Retrieval quality on a labelled set: hit@1 and hit@3 of memory recall (with and without recency
decay) and of runbook lookup by meaning. The set's memory is built in a temporary SQLite file."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from cascadeflow import InvalidRequestError

from ..memory import DEFAULT_HALF_LIFE_DAYS, Embedder, IncidentRecord, MemoryStore
from ..runbooks import RunbookIndex

DEFAULT_SET = Path(__file__).resolve().parent / "retrieval_set.yml"


@dataclass(frozen=True, slots=True, kw_only=True)
class HitRates:
    queries: int
    hit_at_1: float
    hit_at_3: float


def load_set(path: str | Path = DEFAULT_SET) -> dict[str, Any]:
    data = yaml.safe_load(Path(path).read_text())
    if not isinstance(data, dict) or not {"incidents", "queries"} <= set(data):
        raise InvalidRequestError(f"{path}: a retrieval set needs 'incidents' and 'queries'")
    return data


def _rates(ranked: list[list[str]], relevant: list[set[str]]) -> HitRates:
    n = len(ranked)
    hit1 = sum(bool(r[:1] and r[0] in rel) for r, rel in zip(ranked, relevant, strict=True))
    hit3 = sum(bool(set(r[:3]) & rel) for r, rel in zip(ranked, relevant, strict=True))
    return HitRates(queries=n, hit_at_1=hit1 / n if n else 0.0, hit_at_3=hit3 / n if n else 0.0)


def set_incidents(data: Mapping[str, Any], now: datetime) -> list[IncidentRecord]:
    """The set's past incidents as memory records, each `days_ago` before `now`."""
    return [IncidentRecord(id=item["id"], title=item["title"], symptoms=item["symptoms"],
                           root_cause=item["root_cause"], category=item["category"],
                           remediation=item.get("remediation", ""), services=tuple(item["services"]),
                           occurred_at=(now - timedelta(days=item["days_ago"])).isoformat(), source="retrieval-set")
            for item in data["incidents"]]


def memory_hit_rates(data: Mapping[str, Any], *, embedder: Embedder | None = None,
                     half_life_days: float | None = DEFAULT_HALF_LIFE_DAYS) -> HitRates:
    now = datetime(2026, 1, 1, tzinfo=UTC)  # ages in the set are relative to this fixed "now"
    with tempfile.TemporaryDirectory() as tmp:
        store = MemoryStore(Path(tmp) / "set.sqlite", embedder=embedder)
        for record in set_incidents(data, now):
            store.add(record)
        ranked = [[r.record.id for r in store.search(q["text"], k=3, half_life_days=half_life_days, now=now)]
                  for q in data["queries"]]
        store.close()
    return _rates(ranked, [set(q["relevant"]) for q in data["queries"]])


def runbook_hit_rates(data: Mapping[str, Any], index: RunbookIndex | None = None) -> HitRates:
    """By meaning only: the set's alert names are deliberately not in any runbook's front matter."""
    index = index or RunbookIndex()
    queries = data.get("runbook_queries") or []
    ranked = [[m.runbook.name for m in index.search(q["alert"], q["text"])] for q in queries]
    return _rates(ranked, [{q["runbook"]} for q in queries])
