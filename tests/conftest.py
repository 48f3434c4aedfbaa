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


@pytest.fixture
def oa(openai_server):
    """The official openai client on the loopback OpenAI host."""
    import openai

    return openai.OpenAI(base_url=openai_server.base_url, api_key="sk-test", max_retries=0)


@pytest.fixture
def an(anthropic_server):
    """The official anthropic client on the loopback Anthropic host."""
    import anthropic

    return anthropic.Anthropic(base_url=anthropic_server.base_url, api_key="sk-ant-test", max_retries=0)


@pytest.fixture(autouse=True)
def audit_log_in_tmp(monkeypatch, tmp_path):
    """Every call is audited by default; tests write that log under their tmp dir, never into the checkout."""
    monkeypatch.setenv("CASCADEFLOW_AUDIT_PATH", str(tmp_path / "default-audit.jsonl"))
