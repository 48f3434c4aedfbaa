"""What every acceptance test shares: providers pointed at the loopback hosts through their base-URL and key
variables (as a user's environment would), a fresh harness, and the default audit log under tmp_path.

The OpenAI-wire host serves every OpenAI-compatible provider the documents use (Groq, OpenAI, vLLM, Ollama);
the Anthropic host serves Anthropic. Each test scripts the answers it needs; `answers` gives a default.
"""

from __future__ import annotations

import pytest
from loopback import Reply

from cascadeflow import harness

OPENAI_WIRE = ("GROQ", "OPENAI", "VLLM", "OLLAMA", "TOGETHER", "DEEPSEEK", "OPENROUTER")
ANSWER = ("The disk on db-7 fills with WAL segments because replication slot lag grew after the 14:00 "
          "deploy; drop the stale slot, then check archive_command.")


@pytest.fixture(autouse=True)
def provider_env(monkeypatch, tmp_path, loopback_server):
    for name in OPENAI_WIRE:
        monkeypatch.setenv(f"{name}_BASE_URL", loopback_server.openai.base_url)
        monkeypatch.setenv(f"{name}_API_KEY", f"sk-{name.lower()}-loopback")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", loopback_server.anthropic.base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-loopback")
    monkeypatch.setenv("CASCADEFLOW_AUDIT_PATH", str(tmp_path / "audit.jsonl"))
    monkeypatch.delenv("CASCADEFLOW_MODE", raising=False)
    monkeypatch.delenv("CASCADEFLOW_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    harness.reset()
    yield
    harness.reset()


@pytest.fixture
def answers(openai_server, anthropic_server):
    """Both hosts answer every request with one on-topic paragraph and fixed token counts."""
    openai_server.default = Reply(text=ANSWER, usage={"input": 120, "output": 40})
    anthropic_server.default = Reply(text=ANSWER, usage={"input": 120, "output": 40})
    return openai_server, anthropic_server


@pytest.fixture
def audit_log(tmp_path):
    """The records of the default audit log, read back."""
    from cascadeflow.trace import iter_records

    def read() -> list[dict]:
        path = tmp_path / "audit.jsonl"
        return list(iter_records(path)) if path.exists() else []

    return read
