"""Session-wide fixtures: the loopback OpenAI/Anthropic server (see tests/loopback/__init__.py)."""

from __future__ import annotations

import pytest
from loopback import LoopbackServer, ScriptedHost


@pytest.fixture(autouse=True)
def fresh_retry_budgets():
    """Each test starts with full per-provider retry budgets (they are process-wide, like the breakers)."""
    from cascadeflow.providers.retry import DEFAULT_RETRY_BUDGETS

    DEFAULT_RETRY_BUDGETS.reset()


@pytest.fixture(scope="session")
def loopback_server():
    server = LoopbackServer().start()
    yield server
    server.stop()


@pytest.fixture
def openai_server(loopback_server: LoopbackServer) -> ScriptedHost:
    """The scripted OpenAI host (Chat Completions + Responses API), emptied before each test."""
    loopback_server.openai.reset()
    return loopback_server.openai


@pytest.fixture
def anthropic_server(loopback_server: LoopbackServer) -> ScriptedHost:
    """The scripted Anthropic Messages host, emptied before each test."""
    loopback_server.anthropic.reset()
    return loopback_server.anthropic


@pytest.fixture(autouse=True)
def audit_log_in_tmp(monkeypatch, tmp_path):
    """Every call is audited by default; tests write that log under their tmp dir, never into the checkout."""
    monkeypatch.setenv("CASCADEFLOW_AUDIT_PATH", str(tmp_path / "default-audit.jsonl"))
