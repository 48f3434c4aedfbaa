"""`report()` over JSONL files and globs, SQLite and PostgreSQL: the figures per group equal those computed
from the records in plain Python, whatever sink or mix of sinks holds them."""

from __future__ import annotations

import sys
import uuid

import pytest

from cascadeflow.errors import ConfigurationError, MissingExtraError
from cascadeflow.messages import Usage
from cascadeflow.pricing import PriceBook
from cascadeflow.reports import report
from cascadeflow.trace.jsonl import JsonlSink
from cascadeflow.trace.sqlite import SqliteSink
from tests.reports.factory import VERIFIER, anomaly_record, expected, fleet, model_of
from tests.services import POSTGRES_URL, require_postgres


def write(sink, records) -> None:
    for record in records:
        sink.write(record)
    sink.close()


@pytest.fixture
def records():
    return fleet()


def check(rep, records, key) -> None:
    want = expected(records, key)
    assert {r.key[0] for r in rep.rows} == set(want)
    book = PriceBook()
    for row in rep.rows:
        group = want[row.key[0]]
        assert row.calls == group["calls"]
        assert row.cost_usd == pytest.approx(group["cost"])
        assert (row.cascaded, row.accepted) == (group["cascaded"], group["accepted"])
        baseline = float(book.cost(VERIFIER, Usage(group["final_in"], group["final_out"])))
        assert row.baseline_usd == pytest.approx(baseline)
        assert row.savings_usd == pytest.approx(baseline - group["cost"] + group["saved"])
    assert [r.cost_usd for r in rep.rows] == sorted((r.cost_usd for r in rep.rows), reverse=True)


def test_jsonl_report_by_user_matches_the_records(tmp_path, records):
    write(JsonlSink(tmp_path / "audit.jsonl"), records)
    rep = report(tmp_path / "audit.jsonl", by="user")
    check(rep, records, lambda r: r.user_id)
    assert rep.baseline_model == VERIFIER  # the costliest model the calls reached
    assert rep.total.calls == len(records) and rep.total.cache_hits == 1
    assert rep.total.errors == 1


@pytest.mark.parametrize("by, key", [
    ("feature", lambda r: r.metadata["feature"]),
    ("task_type", lambda r: r.metadata["task_type"]),
    ("day", lambda r: r.timestamp[:10]),
    ("model", model_of),  # a stopped call counts for the last model it reached
])
def test_any_field_day_or_metadata_key_groups_the_report(tmp_path, records, by, key):
    write(SqliteSink(tmp_path / "audit.db"), records)
    check(report(tmp_path / "audit.db", by=by), records, key)


def test_several_keys_group_together(tmp_path, records):
    write(JsonlSink(tmp_path / "audit.jsonl"), records)
    rep = report(tmp_path / "audit.jsonl", by=["day", "user"])
    check_keys = {r.key for r in rep.rows}
    assert check_keys == {(r.timestamp[:10], r.user_id) for r in records}
    assert sum(r.calls for r in rep.rows) == len(records)


def test_logs_of_many_machines_and_sinks_are_one_report(tmp_path, records):
    # two machines' rotated JSONL logs (matched by a glob) and a third machine's SQLite database
    for machine, part in (("a", records[:20]), ("b", records[20:40])):
        (tmp_path / machine).mkdir()
        write(JsonlSink(tmp_path / machine / "audit.jsonl", max_bytes=4000, backups=50), part)
    write(SqliteSink(tmp_path / "c.db"), records[40:])
    assert (tmp_path / "a" / "audit.jsonl.1").exists()  # rotated: the glob must take the backups too
    rep = report([str(tmp_path / "*" / "audit.jsonl*"), str(tmp_path / "c.db")], by="feature")
    check(rep, records, lambda r: r.metadata["feature"])


def test_a_log_path_takes_its_rotated_backups(tmp_path, records):
    write(JsonlSink(tmp_path / "audit.jsonl", max_bytes=4000, backups=50), records)
    assert report(tmp_path / "audit.jsonl").total.calls == len(records)


def test_postgres_audit_table_is_read_like_the_files(records):
    require_postgres()
    import psycopg

    from cascadeflow.trace.postgres import PostgresSink

    table = f"audit_report_{uuid.uuid4().hex[:12]}"
    url = f"{POSTGRES_URL}?table={table}"
    try:
        write(PostgresSink(url), records)
        check(report(url, by="user"), records, lambda r: r.user_id)
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP TABLE IF EXISTS "{table}"')


def test_anomaly_events_are_listed_and_not_counted_as_calls(tmp_path, records):
    write(JsonlSink(tmp_path / "audit.jsonl"), [*records, anomaly_record()])
    rep = report(tmp_path / "audit.jsonl", by="user")
    assert rep.total.calls == len(records) and "(none)" not in {r.key[0] for r in rep.rows}
    [event] = rep.anomalies
    assert (event["signal"], event["score"], event["timestamp"]) == ("cost_rate", 7.5, "2026-11-02T12:00:00.000Z")


def test_since_and_until_bound_the_records(tmp_path, records):
    write(JsonlSink(tmp_path / "audit.jsonl"), records)
    rep = report(tmp_path / "audit.jsonl", by="day", since="2026-11-02", until="2026-11-02T23:59:59.999Z")
    assert [r.key for r in rep.rows] == [("2026-11-02",)]
    assert rep.total.calls == sum(1 for r in records if r.timestamp.startswith("2026-11-02"))


def test_a_torn_last_line_is_skipped(tmp_path, records):
    write(JsonlSink(tmp_path / "audit.jsonl"), records)
    with open(tmp_path / "audit.jsonl", "a") as log:
        log.write('{"timestamp": "2026-11-03T00:00:00.000Z", "cost_usd": 1')
    assert report(tmp_path / "audit.jsonl").total.calls == len(records)


def test_a_given_baseline_model_prices_the_savings(tmp_path, records):
    write(JsonlSink(tmp_path / "audit.jsonl"), records)
    rep = report(tmp_path / "audit.jsonl", by="user", baseline_model="anthropic/claude-3-5-haiku-latest")
    want = expected(records, lambda r: "all")["all"]
    price = float(PriceBook().cost("anthropic/claude-3-5-haiku-latest", Usage(want["final_in"], want["final_out"])))
    assert rep.total.baseline_usd == pytest.approx(price)


def test_an_unpriceable_baseline_leaves_savings_unknown(tmp_path, records):
    write(JsonlSink(tmp_path / "audit.jsonl"), records)
    rep = report(tmp_path / "audit.jsonl", baseline_model="nowhere/unknown-model")
    assert rep.total.savings_usd is None and rep.total.savings_pct is None


def test_bad_group_keys_and_missing_logs_are_named(tmp_path):
    with pytest.raises(ConfigurationError, match="no audit log matches"):
        report(tmp_path / "missing.jsonl")
    (tmp_path / "a.jsonl").write_text("")
    with pytest.raises(ConfigurationError, match="cannot group by"):
        report(tmp_path / "a.jsonl", by="user'; drop")
    with pytest.raises(ConfigurationError, match="no audit database"):
        report(tmp_path / "missing.db")


def test_without_duckdb_the_error_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "duckdb", None)  # what an environment without the extra sees
    (tmp_path / "a.jsonl").write_text("")
    with pytest.raises(MissingExtraError, match=r'pip install "cascadeflow\[reports\]"') as caught:
        report(tmp_path / "a.jsonl")
    assert caught.value.extra == "reports"


def test_a_directory_and_a_comma_separated_list_name_their_logs(tmp_path, records):
    (tmp_path / "logs").mkdir()
    write(JsonlSink(tmp_path / "logs" / "a.jsonl", max_bytes=4000, backups=50), records[:30])
    write(JsonlSink(tmp_path / "logs" / "b.jsonl"), records[30:50])
    write(SqliteSink(tmp_path / "c.db"), records[50:])
    assert report(tmp_path / "logs").total.calls == 50
    rep = report(f"{tmp_path / 'logs'},{tmp_path / 'c.db'}", by="month")
    assert [(r.key, r.calls) for r in rep.rows] == [(("2026-11",), len(records))]
    assert report(tmp_path / "c.db", by="hour").total.calls == len(records) - 50
