"""Every call is audited by default: a CascadeAgent or CascadeFlow with no init() writes the default JSONL log
($CASCADEFLOW_AUDIT_PATH, else .cascadeflow/audit.jsonl); `CASCADEFLOW_AUDIT_PATH=off`, `audit=False` or a mode
chosen to be "off" write nothing."""

from __future__ import annotations

import json

import pytest
from loopback import Reply

from cascadeflow import CascadeAgent, CascadeFlow, ModelConfig, harness


@pytest.fixture
def model(openai_server):
    openai_server.default = Reply(text="Raise the Redis pool size; the deploy doubled the workers.",
                                  usage={"input": 30, "output": 12})
    return ModelConfig("gpt-4o-mini", provider="openai", base_url=openai_server.base_url, api_key="sk-test")


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def test_an_agent_run_without_init_writes_the_default_log(model, tmp_path):
    result = await CascadeAgent(models=[model]).run("Why is Redis timing out?", metadata={"alert_id": "INC-9"})
    [record] = _lines(tmp_path / ".cascadeflow" / "audit.jsonl")
    assert record["request_id"] == result.request_id and record["alert_id"] == "INC-9"
    assert record["cost_usd"] == pytest.approx(result.total_cost) and result.total_cost > 0


async def test_the_audit_path_variable_moves_the_default_log(model, tmp_path, monkeypatch):
    monkeypatch.setenv("CASCADEFLOW_AUDIT_PATH", str(tmp_path / "logs" / "calls.jsonl"))
    harness.reset()  # the default runtime reads it when it is built
    await CascadeAgent(models=[model]).run("Why is Redis timing out?")
    assert len(_lines(tmp_path / "logs" / "calls.jsonl")) == 1
    assert not (tmp_path / ".cascadeflow").exists()


@pytest.mark.parametrize("how", ["env off", "init(audit=False)", "mode off chosen"])
async def test_the_default_log_can_be_switched_off(how, model, tmp_path, monkeypatch):
    if how == "env off":
        monkeypatch.setenv("CASCADEFLOW_AUDIT_PATH", "off")
    elif how == "init(audit=False)":
        harness.init(mode="observe", audit=False)
    else:
        harness.init(mode="off")
    await CascadeAgent(models=[model]).run("Why is Redis timing out?")
    await CascadeFlow().acomplete(model=model, messages="and now?")
    assert list(tmp_path.iterdir()) == []


async def test_an_explicit_audit_setting_wins_over_an_off_mode(model, tmp_path):
    harness.init(mode="off", audit=str(tmp_path / "kept.jsonl"))
    await CascadeAgent(models=[model]).run("Why is Redis timing out?")
    assert len(_lines(tmp_path / "kept.jsonl")) == 1
