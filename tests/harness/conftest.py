"""Every harness test starts and ends with a reset harness (SDKs un-patched, default settings)."""

from __future__ import annotations

import pytest

from cascadeflow import harness


@pytest.fixture(autouse=True)
def clean_harness(monkeypatch, tmp_path, loopback_server):
    monkeypatch.delenv("CASCADEFLOW_MODE", raising=False)
    # SDK clients built on the loopback hosts are clients of the vendors these variables name
    monkeypatch.setenv("OPENAI_BASE_URL", loopback_server.openai.base_url)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", loopback_server.anthropic.base_url)
    monkeypatch.delenv("CASCADEFLOW_CONFIG", raising=False)
    monkeypatch.delenv("CASCADEFLOW_AUDIT_PATH", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray cascadeflow.toml, and the default audit log lands in tmp_path
    harness.reset()
    yield
    harness.reset()


@pytest.fixture
def audit_path(tmp_path):
    return tmp_path / "audit.jsonl"


@pytest.fixture
def scripted():
    """A scripted provider and a Runtime sharing the harness ledger (so run budgets are enforced on it)."""
    from cascadeflow.runtime.pipeline import Runtime
    from cascadeflow.testing import ScriptedProvider

    provider = ScriptedProvider(default="fine answer")
    runtime = Runtime(ledger=harness.default_runtime().ledger, resolve_provider=provider.resolver())
    return provider, runtime


async def _call(runtime, model=None, text="hello", **request_kw):
    """One top-level call through Runtime.attempt + Runtime.finish, as an engine makes it."""
    from cascadeflow.messages import build_request
    from cascadeflow.models import ModelConfig

    model = model or ModelConfig("gpt-4o-mini", provider="openai", input_price_per_million=1,
                                 output_price_per_million=2)
    ctx = runtime.new_call(model_requested=model.id)
    try:
        response, record = await runtime.attempt(model, build_request(text, **request_kw), ctx)
    except BaseException as exc:
        runtime.finish(ctx, action="stop", model_selected=None, response=None, error=exc)
        raise
    runtime.finish(ctx, action="allow", model_selected=record.model, response=response)
    return response


@pytest.fixture
def call():
    return _call
