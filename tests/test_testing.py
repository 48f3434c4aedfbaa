"""The shipped test doubles work together: scripted provider, in-memory ledger, audit capture."""

from __future__ import annotations

import pytest

from cascadeflow import BudgetExceeded, CascadeFlow, ModelConfig, Runtime
from cascadeflow.flow.session import BudgetSession
from cascadeflow.testing import FakeProvider, MemoryLedger, ScriptedProvider, capture_audit

MODEL = ModelConfig(name="m", provider="openai", input_price_per_million=1, output_price_per_million=1)


def test_scripted_replies_run_in_order_then_fail_loudly() -> None:
    provider = ScriptedProvider(["one", "two"])
    cf = CascadeFlow(runtime=Runtime(resolve_provider=provider.resolver()), audit=False)
    assert [cf.complete(model=MODEL, messages="q").content for _ in range(2)] == ["one", "two"]
    with pytest.raises(AssertionError, match="no reply left"):
        cf.complete(model=MODEL, messages="q")


def test_memory_ledger_and_audit_capture() -> None:
    runtime = Runtime(resolve_provider=FakeProvider("fine").resolver(), ledger=MemoryLedger())
    audit = capture_audit(runtime)
    cf = CascadeFlow(runtime=runtime)
    with pytest.raises(BudgetExceeded), BudgetSession(cf, limit=0.0001) as session:
        for _ in range(100):
            session.complete(model=MODEL, messages="q", max_tokens=10, metadata={"alert_id": "A"})
    assert audit.records and all(d["alert_id"] == "A" for d in audit.dicts())
