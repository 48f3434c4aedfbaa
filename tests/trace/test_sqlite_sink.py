import json
import multiprocessing
import sqlite3
import threading

import pytest
from audit_factory import make_record, write_sqlite

from cascadeflow.errors import ConfigurationError
from cascadeflow.trace.sqlite import SqliteSink, read_sqlite


def test_each_record_is_one_row_with_indexed_columns_and_the_full_json(tmp_path):
    path = tmp_path / "audit.db"
    record = make_record(metadata={"alert_id": "INC-7", "api_key": "plain-secret"})
    with SqliteSink(path) as sink:
        sink.write(record)
    conn = sqlite3.connect(path)
    row = conn.execute("SELECT timestamp, request_id, run_id, user_id, model, action, cost_usd, record "
                       "FROM audit").fetchone()
    assert row[:7] == (record.timestamp, "req-1", "run-1", "alice", "groq/llama3-70b-8192", "allow", 0.0034)
    stored = json.loads(row[7])
    assert stored["alert_id"] == "INC-7"
    assert stored["metadata"]["api_key"] == "[redacted]"
    assert "plain-secret" not in row[7]
    indexes = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"audit_timestamp", "audit_run_id", "audit_user_id", "audit_model", "audit_action"} <= indexes
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_read_sqlite_filters_on_indexed_columns_and_time(tmp_path):
    path = tmp_path / "audit.db"
    with SqliteSink(path) as sink:
        sink.write(make_record("a", user_id="alice", timestamp="2026-06-15T03:00:00.000Z"))
        sink.write(make_record("b", user_id="bob", action="stop", timestamp="2026-06-15T04:00:00.000Z"))
        sink.write(make_record("c", user_id="bob", model_selected="groq/gemma2-9b-it",
                               timestamp="2026-06-15T05:00:00.000Z"))
    ids = lambda **kw: [r["request_id"] for r in read_sqlite(path, **kw)]
    assert ids() == ["a", "b", "c"]
    assert ids(user_id="bob") == ["b", "c"]
    assert ids(action="stop") == ["b"]
    assert ids(model="groq/gemma2-9b-it") == ["c"]
    assert ids(since="2026-06-15T03:30:00", until="2026-06-15T04:30:00") == ["b"]
    with pytest.raises(ConfigurationError, match="cannot filter on"):
        list(read_sqlite(path, severity="P0"))
    with pytest.raises(ConfigurationError, match="no audit database"):
        list(read_sqlite(tmp_path / "missing.db"))


def test_threads_sharing_one_sink_write_every_row(tmp_path):
    path = tmp_path / "audit.db"
    sink = SqliteSink(path)

    def work(worker):
        for i in range(250):
            sink.write(make_record(f"t{worker}-{i}"))

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sink.close()
    ids = [r["request_id"] for r in read_sqlite(path)]
    assert sorted(ids) == sorted(f"t{w}-{i}" for w in range(8) for i in range(250))


@pytest.mark.slow
def test_concurrent_writer_processes_lose_no_row(tmp_path):
    path = tmp_path / "audit.db"
    SqliteSink(path).close()  # create the schema once, as the harness would at start-up
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        assert pool.starmap(write_sqlite, [(str(path), w, 500) for w in range(4)]) == [500] * 4
    records = list(read_sqlite(path))
    assert len(records) == 2000
    assert {r["request_id"] for r in records} == {f"w{w}-{i}" for w in range(4) for i in range(500)}
    assert len(list(read_sqlite(path, user_id="user1"))) == 1000


def test_bad_synchronous_setting_is_refused(tmp_path):
    with pytest.raises(ConfigurationError, match="synchronous must be one of"):
        SqliteSink(tmp_path / "audit.db", synchronous="SOMETIMES")
