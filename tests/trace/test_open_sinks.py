import json
from pathlib import Path

import pytest
from audit_factory import make_record

from cascadeflow.errors import ConfigurationError
from cascadeflow.runtime.pipeline import Runtime
from cascadeflow.trace import JsonlSink, OtelSink, SqliteSink, default_audit_path, open_sinks, read_log


def test_default_path_comes_from_the_environment_variable_or_falls_back():
    assert default_audit_path({"CASCADEFLOW_AUDIT_PATH": "/var/log/cf/audit.jsonl"}) == Path(
        "/var/log/cf/audit.jsonl")
    assert default_audit_path({}) == Path(".cascadeflow/audit.jsonl")
    assert default_audit_path({"CASCADEFLOW_AUDIT_PATH": "  "}) == Path(".cascadeflow/audit.jsonl")


def test_no_spec_opens_the_default_jsonl_log(tmp_path, monkeypatch):
    monkeypatch.setenv("CASCADEFLOW_AUDIT_PATH", str(tmp_path / "logs" / "audit.jsonl"))
    (sink,) = open_sinks()
    assert isinstance(sink, JsonlSink) and sink.path == tmp_path / "logs" / "audit.jsonl"


def test_a_spec_string_lists_several_sinks(tmp_path):
    sinks = open_sinks(f"{tmp_path}/a.jsonl, sqlite:///{tmp_path}/a.db, otel", max_bytes=1000, backups=3)
    assert [type(s) for s in sinks] == [JsonlSink, SqliteSink, OtelSink]
    assert sinks[0].max_bytes == 1000 and sinks[0].backups == 3
    assert sinks[1].path == tmp_path / "a.db"


def test_sqlite_file_suffixes_and_sink_objects_are_understood(tmp_path):
    existing = JsonlSink(tmp_path / "x.jsonl")
    sinks = open_sinks([tmp_path / "b.sqlite", existing])
    assert isinstance(sinks[0], SqliteSink) and sinks[1] is existing


def test_content_recording_reaches_every_sink(tmp_path):
    sinks = open_sinks(f"{tmp_path}/a.jsonl,sqlite:///{tmp_path}/a.db", record_content=True)
    assert all(s.record_content for s in sinks)


@pytest.mark.parametrize("spec, message", [
    ("redis://localhost/0", "unknown audit sink"),
    ("sqlite:///", "no database path"),
    ("", "empty audit sink spec"),
    ([42], "cannot make an audit sink"),
])
def test_bad_specs_say_what_forms_are_accepted(spec, message):
    with pytest.raises(ConfigurationError, match=message):
        open_sinks(spec)


def test_the_runtime_writes_one_record_per_call_to_every_sink(tmp_path):
    sinks = open_sinks(f"{tmp_path}/audit.jsonl,sqlite:///{tmp_path}/audit.db")
    runtime = Runtime(sinks=sinks)
    call = runtime.new_call(user_id="alice", metadata={"alert_id": "INC-042", "severity": "P0",
                                                       "api_key": "sk-abcdefghijklmnopqrstuvwx"},
                            routing_reason="severity=P0", model_requested="groq/llama3-70b-8192")
    record = runtime.finish(call, action="allow", model_selected="groq/llama3-70b-8192", response=None)
    for source in (tmp_path / "audit.jsonl", tmp_path / "audit.db"):
        (entry,) = read_log(source).records
        assert entry["request_id"] == record.request_id
        assert entry["alert_id"] == "INC-042" and entry["routing_reason"] == "severity=P0"
        assert entry["price_version"] == record.price_version
        assert "sk-abcdefghijklmnopqrstuvwx" not in json.dumps(entry)


def test_a_written_record_matches_what_the_sink_was_given(tmp_path):
    (sink,) = open_sinks(str(tmp_path / "audit.jsonl"))
    record = make_record()
    sink.write(record)
    assert read_log(tmp_path / "audit.jsonl").records == [record.to_dict()]
