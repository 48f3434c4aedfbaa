"""The PostgreSQL audit sink on the real server: the record schema of the other sinks, many processes writing
one table at once with nothing lost, and configuration errors raised at construction."""

from __future__ import annotations

import json
import multiprocessing
import pickle
import uuid

import pytest
from audit_factory import make_record

from cascadeflow.errors import ConfigurationError
from cascadeflow.trace.audit import open_sinks
from cascadeflow.trace.postgres import PostgresSink
from cascadeflow.trace.redact import record_line
from tests.services import POSTGRES_URL, require_postgres

pytestmark = pytest.mark.postgres


@pytest.fixture
def table():
    require_postgres()
    import psycopg

    name = f"audit_test_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP TABLE IF EXISTS "{name}"')


def _rows(table: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(POSTGRES_URL) as conn:
        return conn.execute(f'SELECT request_id, user_id, model, action, cost_usd, record FROM "{table}" '
                            "ORDER BY id").fetchall()


def test_a_record_is_stored_as_the_jsonl_sink_would_write_it(table):
    record = make_record("pg-1", metadata={"feature": "chat", "api_key": "sk-abcdefghijklmnopqrstuvwx"})
    with PostgresSink(f"{POSTGRES_URL}?table={table}") as sink:
        sink.write(record)
    [(request_id, user, model, action, cost, stored)] = _rows(table)
    assert (request_id, user, model, action, cost) == ("pg-1", "alice", "groq/llama3-70b-8192", "allow", 0.0034)
    assert stored == json.loads(record_line(record))
    assert stored["metadata"]["api_key"] == "[redacted]"


def _write_batch(url: str, worker: int, count: int) -> int:
    sink = PostgresSink(url)
    for i in range(count):
        sink.write(make_record(f"w{worker}-{i}", metadata={"worker": worker}))
    sink.close()
    return count


def test_eight_processes_writing_at_once_lose_no_record(table):
    url = f"{POSTGRES_URL}?table={table}"
    workers, per_worker = 8, 250
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        written = pool.starmap(_write_batch, [(url, w, per_worker) for w in range(workers)])
    assert written == [per_worker] * workers
    ids = [row[0] for row in _rows(table)]
    assert sorted(ids) == sorted(f"w{w}-{i}" for w in range(workers) for i in range(per_worker))


def test_a_sink_handed_to_another_process_reopens_its_connection(table):
    sink = PostgresSink(f"{POSTGRES_URL}?table={table}")
    sink.write(make_record("parent"))
    clone = pickle.loads(pickle.dumps(sink))
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        pool.apply(clone.write, (make_record("child"),))
    sink.close()
    assert [row[0] for row in _rows(table)] == ["parent", "child"]


def test_open_sinks_takes_a_postgresql_url(table):
    [sink] = open_sinks(f"{POSTGRES_URL}?table={table}")
    assert isinstance(sink, PostgresSink) and sink.table == table
    sink.close()


def test_a_table_name_that_is_not_an_identifier_is_refused_before_connecting():
    with pytest.raises(ConfigurationError, match="plain SQL identifier"):
        PostgresSink(f"{POSTGRES_URL}?table=audit;drop")


def test_a_server_that_cannot_be_reached_is_named_at_construction():
    with pytest.raises(ConfigurationError, match="cannot open the PostgreSQL audit table"):
        PostgresSink("postgresql://postgres:secret-pass@127.0.0.1:1/test")


def test_a_write_to_a_lost_server_raises_so_the_record_is_spooled(table, tmp_path):
    from cascadeflow.trace.delivery import AuditDelivery

    sink = PostgresSink(f"{POSTGRES_URL}?table={table}")
    sink._conn.close()  # the server dropped the connection
    sink.conninfo = "postgresql://postgres@127.0.0.1:1/test"  # and cannot be reached again
    delivery = AuditDelivery([sink], spool=tmp_path / "spool.jsonl")
    delivery.deliver(make_record("while-down"))
    assert delivery.spooled == 1 and "while-down" in (tmp_path / "spool.jsonl").read_text()
