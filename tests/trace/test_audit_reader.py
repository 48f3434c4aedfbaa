import threading
from datetime import UTC, datetime

import pytest
from audit_factory import make_record

from cascadeflow.errors import ConfigurationError
from cascadeflow.trace.jsonl import JsonlSink
from cascadeflow.trace.reader import (
    RecordFilter,
    follow,
    last_records,
    parse_time,
    read_log,
    summarise,
)
from cascadeflow.trace.sqlite import SqliteSink

ALERTS = [  # request id, severity, model, action, user, run, cost, latency, minute
    ("a", "P0", "groq/llama3-70b-8192", "allow", "alice", "run-1", 0.0034, 1240.0, 0),
    ("b", "P0", "groq/llama3-70b-8192", "escalate", "bob", "run-1", 0.0040, 1500.0, 10),
    ("c", "INFO", "groq/gemma2-9b-it", "allow", "alice", "run-2", 0.0001, 200.0, 20),
    ("d", "P3", "groq/llama3-8b-8192", "stop", "bob", "run-2", 0.0, 5.0, 30),
    ("e", "INFO", "groq/gemma2-9b-it", "allow", "carol", "run-2", 0.0002, 300.0, 40),
]


def write_alerts(sink):
    for rid, severity, model, action, user, run, cost, latency, minute in ALERTS:
        sink.write(make_record(rid, metadata={"alert_id": f"INC-{rid}", "severity": severity},
                               model_selected=model, action=action, user_id=user, run_id=run, cost_usd=cost,
                               latency_ms=latency, input_tokens=100, output_tokens=10,
                               timestamp=f"2026-06-15T03:{minute:02d}:00.000Z",
                               error="BudgetExceeded: over" if action == "stop" else None))


@pytest.fixture(params=["jsonl", "sqlite"])
def log_path(request, tmp_path):
    if request.param == "jsonl":
        path = tmp_path / "audit.jsonl"
        with JsonlSink(path, max_bytes=1500, backups=20) as sink:  # rotated: filters span several files
            write_alerts(sink)
    else:
        path = tmp_path / "audit.db"
        with SqliteSink(path) as sink:
            write_alerts(sink)
    return path


def ids(path, **where):
    return [r["request_id"] for r in read_log(path, RecordFilter(**where)).records]


def test_filters_by_run_user_model_action_and_time(log_path):
    assert ids(log_path) == ["a", "b", "c", "d", "e"]
    assert ids(log_path, run_id="run-2") == ["c", "d", "e"]
    assert ids(log_path, user_id="bob") == ["b", "d"]
    assert ids(log_path, model="groq/gemma2-9b-it") == ["c", "e"]
    assert ids(log_path, model="groq/llama3-*") == ["a", "b", "d"]
    assert ids(log_path, action="allow", user_id="alice") == ["a", "c"]
    since = datetime(2026, 6, 15, 3, 10, tzinfo=UTC)
    until = datetime(2026, 6, 15, 3, 30, tzinfo=UTC)
    assert ids(log_path, since=since, until=until) == ["b", "c", "d"]


def test_summary_by_model_counts_cost_tokens_and_latency(log_path):
    groups = {g.key: g for g in summarise(read_log(log_path).records, by="model")}
    big = groups["groq/llama3-70b-8192"]
    assert big.count == 2
    assert big.cost_usd == pytest.approx(0.0074)
    assert (big.input_tokens, big.output_tokens) == (200, 20)
    assert big.latency_ms_p50 == pytest.approx(1370.0)
    assert groups["groq/llama3-8b-8192"].errors == 1
    assert next(iter(groups)) == "groq/llama3-70b-8192"  # most expensive first


def test_summary_by_action_and_by_a_metadata_key(log_path):
    records = read_log(log_path).records
    assert {g.key: g.count for g in summarise(records, by="action")} == {"allow": 3, "escalate": 1, "stop": 1}
    by_severity = {g.key: g for g in summarise(records, by="severity")}
    assert {k: g.count for k, g in by_severity.items()} == {"P0": 2, "INFO": 2, "P3": 1}
    assert by_severity["INFO"].cost_usd == pytest.approx(0.0003)
    assert {g.key for g in summarise(records, by="ticket")} == {"(none)"}


def test_summary_keeps_calls_refused_before_sending_out_of_the_latency_figures():
    sent = [make_record(f"s{i}", latency_ms=1000.0 + 100 * i).to_dict() for i in range(3)]
    refused = [make_record(f"r{i}", action="stop", model_selected=None, tiers=[], cost_usd=0.0, input_tokens=0,
                           output_tokens=0, latency_ms=0.02, error="BudgetExceeded: over").to_dict()
               for i in range(5)]
    [group] = summarise(sent + refused, by="model")
    assert group.key == "groq/llama3-70b-8192"  # the refused calls group under the model they asked for
    assert (group.count, group.not_sent, group.errors) == (8, 5, 5)
    assert group.latency_ms_p50 == pytest.approx(1100.0)  # not dragged to ~0 by the five refusals
    [only_refused] = summarise(refused, by="action")
    assert (only_refused.not_sent, only_refused.latency_ms_p50, only_refused.latency_ms_p95) == (5, None, None)
    without_tiers = {k: v for k, v in refused[0].items() if k != "tiers"}  # another tool's record: taken as sent
    assert summarise([without_tiers])[0].not_sent == 0


def test_summary_by_model_puts_a_call_stopped_after_its_draft_under_the_draft_model():
    draft = {"tier": 0, "role": "draft", "model": "groq/llama3-8b-8192", "max_tokens": 96, "cost_usd": 0.0002,
             "input_tokens": 100, "output_tokens": 18, "latency_ms": 800.0, "status": "ok", "error": None,
             "finish_reason": "stop", "shrunk_from": None}
    stopped = make_record("x", action="stop", model_selected=None, tiers=[draft], cost_usd=0.0002,
                          latency_ms=810.0, error="BudgetExceeded: escalation does not fit").to_dict()
    [group] = summarise([stopped], by="model")
    assert (group.key, group.not_sent, group.latency_ms_p50) == ("groq/llama3-8b-8192", 0, 810.0)


def test_corrupt_lines_in_the_middle_are_skipped_and_reported_with_their_place(tmp_path):
    path = tmp_path / "audit.jsonl"
    with JsonlSink(path) as sink:
        sink.write(make_record("a"))
    with open(path, "ab") as raw:
        raw.write(b"not json\n[1, 2]\n\xff\xfe\n")
    with JsonlSink(path) as sink:
        sink.write(make_record("b"))
    contents = read_log(path)
    assert [r["request_id"] for r in contents.records] == ["a", "b"]
    assert [(s.line, s.reason) for s in contents.skipped] == [
        (2, "invalid JSON"), (3, "not a JSON object"), (4, "invalid JSON")]
    assert str(contents.skipped[0]) == f"{path}:2: invalid JSON"


def test_last_records_reads_back_across_rotated_files(tmp_path):
    path = tmp_path / "audit.jsonl"
    with JsonlSink(path, max_bytes=2000, backups=50) as sink:
        for i in range(30):
            sink.write(make_record(f"r{i}"))
    assert [r["request_id"] for r in last_records(path, 7)] == [f"r{i}" for i in range(23, 30)]
    assert len(last_records(path, 100)) == 30
    assert last_records(path, 0) == []


def test_a_missing_log_says_how_to_point_at_one(tmp_path):
    with pytest.raises(ConfigurationError, match="CASCADEFLOW_AUDIT_PATH"):
        read_log(tmp_path / "nowhere.jsonl")


@pytest.mark.parametrize("text, expected", [
    ("2026-06-15T03:42:11Z", datetime(2026, 6, 15, 3, 42, 11, tzinfo=UTC)),
    ("2026-06-15T03:42:11", datetime(2026, 6, 15, 3, 42, 11, tzinfo=UTC)),
    ("2026-06-15", datetime(2026, 6, 15, tzinfo=UTC)),
    ("15m", datetime(2026, 6, 15, 3, 27, 11, tzinfo=UTC)),
    ("2h", datetime(2026, 6, 15, 1, 42, 11, tzinfo=UTC)),
    ("1d", datetime(2026, 6, 14, 3, 42, 11, tzinfo=UTC)),
])
def test_times_are_iso_or_a_look_back(text, expected):
    assert parse_time(text, now=datetime(2026, 6, 15, 3, 42, 11, tzinfo=UTC)) == expected


def test_an_unreadable_time_says_which_forms_work():
    with pytest.raises(ConfigurationError, match="ISO-8601"):
        parse_time("yesterday")


def test_follow_yields_new_records_across_a_rotation(tmp_path):
    path = tmp_path / "audit.jsonl"
    sink = JsonlSink(path, max_bytes=3000, backups=50)
    sink.write(make_record("old"))  # already there when following starts: not yielded
    stream = follow(path, poll_seconds=0.01, idle_exit_s=30.0)  # positioned at the end from here on

    def produce():
        for i in range(20):
            sink.write(make_record(f"new{i}"))

    producer = threading.Thread(target=produce)
    producer.start()
    seen = []
    for record in stream:
        seen.append(record["request_id"])
        if len(seen) == 20:
            break
    producer.join()
    sink.close()
    assert seen == [f"new{i}" for i in range(20)]
