"""The incident memory: SQLite round trip, recall by meaning and keywords, recency decay, read-only
evaluation, reflection insights with their evidence."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from cascadeflow import ConfigurationError, InvalidRequestError
from cascadeflow_incidents.memory import (
    HashingEmbedder,
    IncidentRecord,
    MemoryStore,
    ReadOnlyMemory,
    reflect,
)

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _record(title, root, category="resource_exhaustion", *, days_ago=1, **kw) -> IncidentRecord:
    return IncidentRecord(title=title, symptoms=title, root_cause=root, category=category, remediation="fix",
                          occurred_at=(NOW - timedelta(days=days_ago)).isoformat(), **kw)


def test_the_embedder_returns_unit_float32_rows_and_is_deterministic() -> None:
    matrix = HashingEmbedder().embed(["pod OOMKilled exit code 137", "pod OOMKilled exit code 137", ""])
    assert matrix.dtype == np.float32 and matrix.shape[0] == 3
    assert np.allclose(np.linalg.norm(matrix[:2], axis=1), 1.0) and np.array_equal(matrix[0], matrix[1])


def test_recall_finds_the_similar_incident_and_keeps_every_field(tmp_path) -> None:
    store = MemoryStore(tmp_path / "memory.sqlite")
    store.add(_record("payments pod OOMKilled exit code 137", "memory limit too low for batch size",
                      services=("payments",), deploy_version="v2.1", fix_worked=True, minutes_to_resolve=42))
    store.add(_record("DNS lookup failing for postgres", "service renamed", "configuration_error"))
    hit = store.search("container killed OOM exit code 137 in payments", now=NOW)[0]
    assert hit.record.title.startswith("payments pod OOMKilled") and hit.keyword > 0
    assert (hit.record.services, hit.record.deploy_version, hit.record.fix_worked,
            hit.record.minutes_to_resolve) == (("payments",), "v2.1", True, 42)
    assert len(store) == 2


def test_recency_decay_prefers_last_weeks_twin_over_last_years(tmp_path) -> None:
    store = MemoryStore(tmp_path / "memory.sqlite")
    old = store.add(_record("redis connection pool exhausted timeouts", "pool too small", days_ago=365))
    new = store.add(_record("redis connection pool exhausted timeout", "pool too small", days_ago=7))
    decayed = store.search("redis connection pool exhausted timeouts", now=NOW)
    assert decayed[0].record.id == new.id and decayed[1].recency < 0.1
    flat = store.search("redis connection pool exhausted timeouts", now=NOW, half_life_days=None)
    assert flat[0].record.id == old.id  # without decay the exact wording wins


def test_a_read_only_memory_refuses_writes_and_must_exist(tmp_path) -> None:
    path = tmp_path / "memory.sqlite"
    MemoryStore(path).add(_record("a b c", "root"))
    with pytest.raises(ReadOnlyMemory):
        MemoryStore(path, read_only=True).add(_record("d e f", "root"))
    with pytest.raises(ConfigurationError, match="does not exist"):
        MemoryStore(tmp_path / "missing.sqlite", read_only=True)
    with pytest.raises(InvalidRequestError, match="title and a root cause"):
        MemoryStore(path).add(_record("", "root"))


def test_insights_name_recurring_patterns_with_the_incidents_they_rest_on() -> None:
    records = [_record("oom 1", "leak after deploy", services=("api",), deploy_version="v1"),
               _record("oom 2", "leak", services=("api",), fix_worked=False),
               _record("dns", "renamed service", "configuration_error", services=("web",))]
    insights = {i.kind: i for i in reflect(records)}
    assert insights["recurring_category"].incidents == (records[0].id, records[1].id)
    assert "'api' recurs in 2" in insights["recurring_service"].statement
    assert insights["fix_failed"].incidents == (records[1].id,)
    assert "deploy_related" not in insights  # one deploy-related incident is not a pattern


def test_vectors_of_another_embedding_model_are_recomputed_not_compared(tmp_path) -> None:
    path = tmp_path / "memory.sqlite"
    record = MemoryStore(path, embedder=HashingEmbedder(64)).add(_record("checkout OOMKilled exit 137", "limit"))
    current = HashingEmbedder(256)
    hit = MemoryStore(path, embedder=current).search("checkout OOMKilled exit 137", now=NOW)[0]
    expected = float(current.embed([record.text()])[0] @ current.embed(["checkout OOMKilled exit 137"])[0])
    assert hit.similarity == pytest.approx(expected)  # the stored text re-embedded by the current model
    read_only = MemoryStore(path, embedder=HashingEmbedder(128), read_only=True)
    assert read_only.search("checkout OOMKilled", now=NOW)[0].similarity > 0.5


def _postgres_url() -> str:
    import os
    import socket

    url = os.environ.get("CASCADEFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
    except OSError:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL not reachable at {url} (CI is set: the server is required)")
        pytest.skip(f"PostgreSQL not reachable at {url}")
    return url


@pytest.fixture
def postgres_schema():
    import uuid

    import psycopg

    url, schema = _postgres_url(), f"incmem_{uuid.uuid4().hex[:10]}"
    yield url, schema
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"drop schema if exists {schema} cascade")


@pytest.mark.postgres
def test_a_team_memory_on_postgresql_recalls_like_sqlite_and_can_be_read_only(postgres_schema) -> None:
    from cascadeflow_incidents.memory import PostgresMemoryStore

    url, schema = postgres_schema
    store = PostgresMemoryStore(url, schema=schema, embedder=HashingEmbedder())
    old = store.add(_record("redis connection pool exhausted timeouts", "pool too small", days_ago=365,
                            services=("auth",), fix_worked=False))
    new = store.add(_record("redis connection pool exhausted timeout", "pool too small", days_ago=7,
                            minutes_to_resolve=12.5))
    hits = store.search("redis connection pool exhausted timeouts", now=NOW)
    assert [h.record.id for h in hits] == [new.id, old.id] and len(store) == 2
    assert hits[1].record.services == ("auth",) and hits[1].record.fix_worked is False
    assert hits[0].record.minutes_to_resolve == 12.5
    store.add(replace(new, remediation="raised the pool to 64"))  # the same incident, updated
    assert len(store) == 2
    store.close()
    reader = PostgresMemoryStore(url, schema=schema, embedder=HashingEmbedder(), read_only=True)
    assert reader.search("pool exhausted", now=NOW, k=1)[0].record.remediation == "raised the pool to 64"
    with pytest.raises(ReadOnlyMemory):
        reader.add(_record("x y z", "root"))
    reader.close()
    with pytest.raises(ConfigurationError, match="schema"):
        PostgresMemoryStore(url, schema="Bad-Name")


def test_deploy_related_incidents_become_a_pattern_once_they_recur() -> None:
    records = [_record("api 500s", "release v2 broke serialisation", "code_defect"),
               _record("web crash", "new revision missing env var", "configuration_error", deploy_version="v9"),
               _record("db slow", "vacuum lag", "resource_exhaustion")]
    insight = next(i for i in reflect(records) if i.kind == "deploy_related")
    assert insight.incidents == (records[0].id, records[1].id) and "2 of 3" in insight.statement
