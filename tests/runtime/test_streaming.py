"""CascadeFlow.astream: a one-model call streamed through the pipeline (reserved, priced, settled and recorded
once), a refusal before anything is sent, and an early close that cancels upstream and charges what arrived."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from cascadeflow import BudgetExceeded, ModelConfig
from cascadeflow.budget import open_ledger
from cascadeflow.flow.client import CascadeFlow
from cascadeflow.messages import StreamDone, TextDelta, ToolCallDelta
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


async def test_a_stream_is_served_from_the_cache_and_a_streamed_answer_is_stored(openai_server):
    from cascadeflow.cache.config import CacheConfig

    model = ModelConfig(name="gpt-4o-mini", provider="openai", base_url=openai_server.base_url, api_key="sk-t",
                        input_price_per_million=1, output_price_per_million=2)
    runtime = Runtime(ledger=open_ledger("memory://"))
    sink = capture_audit(runtime)
    cf = CascadeFlow(runtime=runtime, cache_config=CacheConfig(ttl=60))
    openai_server.enqueue(text="cached words", usage={"input": 4, "output": 2})
    question = f"what is a cache? {uuid.uuid4()}"  # memory caches of one configuration are shared
    streamed = [e async for e in cf.astream(model, question, max_tokens=50)]
    again = [e async for e in cf.astream(model, question, max_tokens=50)]
    plain = await cf.acomplete(model, question, max_tokens=50)
    assert len(openai_server.requests) == 1  # the streamed answer served both later calls
    assert [type(e) for e in again] == [TextDelta, StreamDone] and again[0].text == "cached words"
    assert again[-1].response.usage.output_tokens == 2 == streamed[-1].response.usage.output_tokens
    assert plain.cache_hit and plain.content == "cached words"
    assert [r.cost_usd for r in sink.records] == [pytest.approx(8 / 1e6), 0, 0]


async def test_a_stream_cut_short_is_not_stored(openai_server):
    from cascadeflow.cache.config import CacheConfig

    model = ModelConfig(name="gpt-4o-mini", provider="openai", base_url=openai_server.base_url, api_key="sk-t")
    runtime = Runtime(ledger=open_ledger("memory://"))
    sink = capture_audit(runtime)
    cf = CascadeFlow(runtime=runtime, cache_config=CacheConfig(ttl=60))
    openai_server.enqueue(text=" ".join(["w"] * 100), chunk_delay=0.02)
    question = f"talk {uuid.uuid4()}"
    stream = cf.astream(model, question, max_tokens=1000)
    for _ in range(3):
        await stream.__anext__()
    await stream.aclose()
    for _ in range(300):
        if sink.records:
            break
        await asyncio.sleep(0.01)
    openai_server.enqueue(text="whole answer", usage={"input": 1, "output": 2})
    events = [e async for e in cf.astream(model, question, max_tokens=1000)]
    assert events[-1].response.content == "whole answer" and len(openai_server.requests) == 2
