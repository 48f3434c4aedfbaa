import csv
import json

import pytest
from audit_factory import make_record
from typer.testing import CliRunner

import cascadeflow.cli.trace  # noqa: F401  registers the `trace` sub-app
from cascadeflow.cli import app
from cascadeflow.trace.jsonl import JsonlSink

runner = CliRunner()


@pytest.fixture
def audit_log(tmp_path):
    path = tmp_path / "audit.jsonl"
    rows = [("r0", "P0", "groq/llama3-70b-8192", "allow", "alice", "run-1", 0.0034, 0),
            ("r1", "INFO", "groq/gemma2-9b-it", "allow", "bob", "run-1", 0.0001, 10),
            ("r2", "P3", "groq/llama3-8b-8192", "stop", "bob", "run-2", 0.0, 20),
            ("r3", "P0", "groq/llama3-70b-8192", "escalate", "alice", "run-2", 0.0040, 30)]
    with JsonlSink(path, max_bytes=1500, backups=10) as sink:
        for rid, severity, model, action, user, run, cost, minute in rows:
            sink.write(make_record(rid, model_selected=model, action=action, user_id=user, run_id=run,
                                   cost_usd=cost, timestamp=f"2026-06-15T03:{minute:02d}:00.000Z",
                                   metadata={"alert_id": f"INC-{rid}", "severity": severity}))
    return path


def trace(*args, env=None):
    return runner.invoke(app, ["trace", *map(str, args)], env=env)


def test_tail_prints_the_last_n_records(audit_log):
    result = trace("tail", audit_log, "-n", 2)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert "req=r2" in lines[0] and "stop" in lines[0] and "severity=P3" in lines[0]
    assert "req=r3" in lines[1] and "alert_id=INC-r3" in lines[1]


def test_tail_shows_whole_request_ids(tmp_path):
    # ids of one process share their first 16 hex digits (stamps.py): a cut id would not tell them apart
    path = tmp_path / "audit.jsonl"
    ids = ["2d66a592fab4cb020000000000000007", "2d66a592fab4cb020000000000000008"]
    with JsonlSink(path) as sink:
        for rid in ids:
            sink.write(make_record(rid))
    result = trace("tail", path, "-n", 2)
    assert result.exit_code == 0, result.output
    assert [f"req={rid}" in line for rid, line in zip(ids, result.stdout.splitlines(), strict=True)] == [True, True]


def test_tail_reads_the_path_from_the_environment_variable(audit_log):
    result = trace("tail", "-n", 1, "--json", env={"CASCADEFLOW_AUDIT_PATH": str(audit_log)})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["request_id"] == "r3"


def test_tail_follow_prints_existing_records_then_stops_when_idle(audit_log):
    result = trace("tail", audit_log, "-n", 1, "--follow", "--idle-exit", "0.2", "--json")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["request_id"] for line in result.stdout.splitlines()] == ["r3"]


def test_filter_combines_conditions(audit_log):
    result = trace("filter", audit_log, "--user", "bob", "--run", "run-1", "--json")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["request_id"] for line in result.stdout.splitlines()] == ["r1"]
    by_model = trace("filter", audit_log, "--model", "groq/llama3-*", "--action", "escalate", "--json")
    assert [json.loads(line)["request_id"] for line in by_model.stdout.splitlines()] == ["r3"]
    by_time = trace("filter", audit_log, "--since", "2026-06-15T03:05:00Z", "--until", "2026-06-15T03:20:00Z",
                    "--json")
    assert [json.loads(line)["request_id"] for line in by_time.stdout.splitlines()] == ["r1", "r2"]


def test_summary_by_severity_and_model(audit_log):
    result = trace("summary", audit_log, "--by", "severity", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    groups = {g["key"]: g for g in report["groups"]}
    assert groups["P0"]["count"] == 2 and groups["P0"]["cost_usd"] == pytest.approx(0.0074)
    assert report["total"]["count"] == 4
    table = trace("summary", audit_log, "--by", "model")
    assert table.exit_code == 0
    assert "groq/llama3-70b-8192" in table.stdout and "total" in table.stdout


def test_summary_shows_calls_refused_before_sending_apart(tmp_path):
    path = tmp_path / "audit.jsonl"
    with JsonlSink(path) as sink:
        sink.write(make_record("sent", latency_ms=1240.0))
        sink.write(make_record("refused", action="stop", model_selected=None, tiers=[], latency_ms=0.01,
                               cost_usd=0.0, error="BudgetExceeded: over"))
    report = json.loads(trace("summary", path, "--by", "action", "--json").stdout)
    groups = {g["key"]: g for g in report["groups"]}
    assert groups["stop"]["not_sent"] == 1 and groups["stop"]["latency_ms_p50"] is None
    assert report["total"]["not_sent"] == 1 and report["total"]["latency_ms_p50"] == 1240.0
    table = trace("summary", path, "--by", "action")
    assert table.exit_code == 0, table.output
    assert "not sent" in table.stdout
    stop_row = next(line for line in table.stdout.splitlines() if "stop" in line)
    assert " - " in stop_row + " "  # no latency for a group that sent nothing


def test_export_csv_has_the_record_fields_and_metadata_columns(audit_log, tmp_path):
    out = tmp_path / "export" / "audit.csv"
    result = trace("export", audit_log, "--format", "csv", "-o", out, "--action", "allow")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert [r["request_id"] for r in rows] == ["r0", "r1"]
    assert rows[0]["alert_id"] == "INC-r0" and rows[0]["severity"] == "P0"
    assert rows[0]["model_selected"] == "groq/llama3-70b-8192" and rows[0]["routing_reason"] == "severity=P0"
    assert float(rows[0]["cost_usd"]) == pytest.approx(0.0034)
    assert rows[0]["attempts"] == "1" and json.loads(rows[0]["tiers"])[0]["finish_reason"] == "stop"


def test_export_jsonl_round_trips(audit_log, tmp_path):
    out = tmp_path / "audit-copy.jsonl"
    result = trace("export", audit_log, "--format", "jsonl", "-o", out)
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["request_id"] for line in out.read_text().splitlines()] == ["r0", "r1", "r2", "r3"]


def test_torn_lines_are_reported_on_stderr_not_mixed_into_records(audit_log):
    with open(audit_log, "ab") as raw:
        raw.write(b'{"request_id": "half')
    result = trace("filter", audit_log, "--json")
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 4
    assert "skipped 1 unreadable line" in result.stderr and "torn last line" in result.stderr


@pytest.mark.parametrize("args, message", [
    (("export", "--format", "xml", "-o", "x.xml"), "--format must be csv or jsonl"),
    (("filter", "--since", "yesterday"), "ISO-8601"),
])
def test_bad_options_fail_with_a_clear_message(audit_log, args, message):
    result = trace(*args[:1], audit_log, *args[1:])
    assert result.exit_code == 2
    assert message in result.stderr


def test_a_missing_log_says_how_to_point_at_one(tmp_path):
    result = trace("tail", tmp_path / "none.jsonl")
    assert result.exit_code == 2
    assert "CASCADEFLOW_AUDIT_PATH" in result.stderr


def test_sqlite_logs_are_read_by_the_same_commands(tmp_path):
    from cascadeflow.trace.sqlite import SqliteSink

    path = tmp_path / "audit.db"
    with SqliteSink(path) as sink:
        sink.write(make_record("s0", user_id="alice"))
        sink.write(make_record("s1", user_id="bob"))
    result = trace("filter", f"sqlite:///{path}", "--user", "bob", "--json")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["request_id"] for line in result.stdout.splitlines()] == ["s1"]
    assert json.loads(trace("tail", path, "-n", 1, "--json").stdout)["request_id"] == "s1"


def test_tail_follow_prints_records_appended_while_following(audit_log, monkeypatch):
    import cascadeflow.cli.trace as trace_cli

    real_follow = trace_cli.follow

    def follow_then_append(*args, **kwargs):
        stream = real_follow(*args, **kwargs)  # positioned at the end of the log now
        with JsonlSink(audit_log, max_bytes=1500, backups=10) as sink:  # rotates while being followed
            for i in range(3):
                sink.write(make_record(f"late{i}"))
        return stream

    monkeypatch.setattr(trace_cli, "follow", follow_then_append)
    result = trace("tail", audit_log, "-n", 1, "--follow", "--idle-exit", "0.3", "--json")
    assert result.exit_code == 0, result.output
    printed = [json.loads(line)["request_id"] for line in result.stdout.splitlines()]
    # the tail shows the newest record (already late2), the follow the others appended meanwhile, once each
    assert printed == ["late2", "late0", "late1"]
