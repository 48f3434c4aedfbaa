"""init() settings precedence: argument > CASCADEFLOW_MODE > config file > defaults; reset() restores."""

from __future__ import annotations

import pytest

from cascadeflow import harness
from cascadeflow.errors import ConfigurationError


def test_defaults_without_anything():
    config = harness.init(audit=False)
    assert config.mode == "off" and config.source == "defaults" and config.ledger_url == "memory://"


def test_config_file_in_the_working_directory(tmp_path):
    (tmp_path / "cascadeflow.toml").write_text('[harness]\nmode = "observe"\ncompliance = "gdpr"\naudit = false\n')
    config = harness.init()
    assert config.mode == "observe" and config.compliance == "gdpr" and config.source.endswith("cascadeflow.toml")
    assert harness.run().compliance.name == "gdpr"


def test_yaml_config_file_given_by_path(tmp_path):
    path = tmp_path / "conf" / "cf.yaml"
    path.parent.mkdir()
    path.write_text("mode: enforce\nrecord_content: true\naudit: false\n")
    config = harness.init(config_file=path)
    assert config.mode == "enforce" and config.record_content is True


def test_environment_beats_the_file_and_the_argument_beats_both(tmp_path, monkeypatch):
    (tmp_path / "cascadeflow.toml").write_text('mode = "observe"\naudit = false\n')
    monkeypatch.setenv("CASCADEFLOW_MODE", "enforce")
    config = harness.init()
    assert config.mode == "enforce" and config.source == "environment CASCADEFLOW_MODE"
    config = harness.init(mode="off")
    assert config.mode == "off" and config.source == "argument"


def test_config_path_from_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "elsewhere.toml"
    path.write_text('mode = "observe"\naudit = false\n')
    monkeypatch.setenv("CASCADEFLOW_CONFIG", str(path))
    assert harness.init().mode == "observe"


def test_config_file_values_are_read_by_type_so_a_no_string_records_nothing(tmp_path):
    (tmp_path / "cascadeflow.toml").write_text('mode = "observe"\nrecord_content = "no"\naudit = false\n')
    assert harness.init().record_content is False
    (tmp_path / "cascadeflow.toml").write_text('mode = "observe"\nrecord_content = "yes"\naudit = false\n')
    assert harness.init().record_content is True


@pytest.mark.parametrize("content, message", [
    ('mode = "loud"\n', "mode must be one of off, observe, enforce"),
    ('record_content = "maybe"\n', "record_content: Input should be a valid boolean"),
    ("instrument = 3\n", "instrument: Input should be a valid boolean"),
    ('colour = "blue"\n', "unknown settings"),
    ("mode = [\n", "cannot parse config file"),
])
def test_bad_config_files_are_reported_with_the_file(tmp_path, content, message):
    (tmp_path / "cascadeflow.toml").write_text(content)
    with pytest.raises(ConfigurationError, match=message):
        harness.init()


def test_bad_arguments_fail_before_anything_changes(monkeypatch):
    with pytest.raises(ConfigurationError, match="got 'loud'"):
        harness.init(mode="loud")
    monkeypatch.setenv("CASCADEFLOW_MODE", "bogus")
    with pytest.raises(ConfigurationError, match="environment CASCADEFLOW_MODE"):
        harness.init()
    monkeypatch.delenv("CASCADEFLOW_MODE")
    with pytest.raises(ConfigurationError, match="compliance preset"):
        harness.init(mode="observe", compliance="nope", audit=False)
    with pytest.raises(ConfigurationError, match="ledger URL"):
        harness.init(mode="observe", ledger_url="nowhere", audit=False)
    assert harness.current_config().mode == "off"


def test_init_builds_the_default_runtime_with_ledger_and_sinks(tmp_path):
    harness.init(mode="observe", audit=str(tmp_path / "a.jsonl"), ledger_url=f"sqlite:///{tmp_path}/l.db")
    runtime = harness.default_runtime()
    assert type(runtime.ledger).__name__ == "SqliteLedger"
    assert [type(s).__name__ for s in runtime.sinks] == ["JsonlSink"]
    assert harness.default_runtime() is runtime


def test_observe_without_an_audit_setting_writes_the_default_log(tmp_path):
    harness.init(mode="observe")
    assert [str(s.path) for s in harness.default_runtime().sinks] == [".cascadeflow/audit.jsonl"]


def test_reset_restores_defaults_and_unpatches():
    import openai.resources.chat.completions.completions as chat

    original = chat.Completions.create
    harness.init(mode="observe", audit=False)
    assert chat.Completions.create is not original
    assert "openai.resources.chat.completions.completions.Completions.create" in harness.instrument_patched()
    harness.init(mode="enforce", audit=False)  # re-init does not double-wrap
    assert chat.Completions.create.__cascadeflow_original__ is original
    harness.reset()
    assert chat.Completions.create is original and harness.current_config().mode == "off"
    assert harness.instrument_patched() == []


def test_off_mode_and_instrument_false_leave_the_sdks_alone():
    from anthropic.resources.messages import messages

    original = messages.Messages.create
    harness.init(mode="off")
    assert messages.Messages.create is original
    harness.init(mode="enforce", instrument=False, audit=False)
    assert messages.Messages.create is original


def test_a_settings_table_in_yaml_and_unknown_init_arguments(tmp_path):
    (tmp_path / "cascadeflow.yaml").write_text("harness:\n  mode: observe\n  audit: false\n  ledger_url: memory://\n")
    assert harness.init().mode == "observe"
    from cascadeflow.harness.config import resolve_config

    with pytest.raises(ConfigurationError, match="unknown init"):
        resolve_config(colour="blue")


def test_init_keeps_the_sinks_it_opens_open_and_closes_them_at_the_next_init_and_at_reset(audit_path):
    harness.init(mode="observe", audit=str(audit_path), instrument=False)
    first = harness.default_runtime().sinks[0]
    assert first.is_open  # init tears down the previous runtime's sinks, not its own
    harness.init(mode="observe", audit=str(audit_path), instrument=False)
    second = harness.default_runtime().sinks[0]
    assert not first.is_open and second.is_open
    harness.reset()
    assert not second.is_open
