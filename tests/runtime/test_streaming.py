"""CascadeFlow.astream: a one-model call streamed through the pipeline (reserved, priced, settled and recorded
once), a refusal before anything is sent, and an early close that cancels upstream and charges what arrived."""

from __future__ import annotations

import asyncio

import pytest

from cascadeflow import BudgetExceeded, ModelConfig
from cascadeflow.budget import open_ledger
from cascadeflow.messages import StreamDone, TextDelta, ToolCallDelta
from cascadeflow.runtime.client import CascadeFlow
from cascadeflow.runtime.pipeline import Charge, Runtime
from cascadeflow.testing import capture_audit


@pytest.fixture
def flow(openai_server):
    model = ModelConfig(name="gpt-4o-mini", provider="openai", base_url=openai_server.base_url, api_key="sk-t",
                        input_price_per_million=1, output_price_per_million=2)
    ledger = open_ledger("memory://")
    runtime = Runtime(ledger=ledger)
    return CascadeFlow(runtime=runtime), model, ledger, capture_audit(runtime)


async def test_events_then_one_done_and_one_settled_record(flow, openai_server):
    cf, model, ledger, sink = flow
    openai_server.enqueue(text="one two", tool_calls=[{"name": "f", "arguments": {"a": 1}}],
                          usage={"input": 10, "output": 6})
    charge = Charge("team:x", 1_000_000)
    events = [e async for e in cf.astream(model, "hi", max_tokens=50, _charges=(charge,))]
    assert [type(e) for e in events[:2]] == [TextDelta, TextDelta] and isinstance(events[-1], StreamDone)
    assert any(isinstance(e, ToolCallDelta) for e in events)
    done = events[-1].response
    assert done.usage.output_tokens == 6 and done.tool_calls[0].name == "f"
    [record] = sink.records
    assert record.cost_usd == pytest.approx((10 * 1 + 6 * 2) / 1e6) and record.action == "allow"
    assert ledger.states(["team:x"])["team:x"].spent == 22 and ledger.states(["team:x"])["team:x"].reserved == 0


async def test_a_budget_that_cannot_fit_refuses_before_sending(flow, openai_server):
    cf, model, _ledger, sink = flow
    with pytest.raises(BudgetExceeded):
        async for _ in cf.astream(model, "hi", max_tokens=4000, _charges=(Charge("tiny", 1),)):
            pass
    assert openai_server.requests == [] and sink.records[0].action == "stop"


async def test_closing_early_cancels_upstream_and_charges_what_arrived(flow, openai_server):
    cf, model, _ledger, sink = flow
    openai_server.enqueue(text=" ".join(["w"] * 100), chunk_delay=0.02)
    stream = cf.astream(model, "talk", max_tokens=1000)
    for _ in range(3):
        await stream.__anext__()
    await stream.aclose()
    for _ in range(300):
        if sink.records and openai_server.requests[0].disconnected:
            break
        await asyncio.sleep(0.01)
    [record] = sink.records
    assert openai_server.requests[0].disconnected
    assert 0 < record.output_tokens < 100 and record.cost_usd < 1000 * 2 / 1e6
    assert record.tiers[0]["finish_reason"] == "unknown"
