"""The SDK bridge's building blocks: driving the pipeline coroutine by hand, hand-offs, redaction of SDK
payloads, model configs for SDK calls."""

from __future__ import annotations

import asyncio

import pytest

from cascadeflow import harness
from cascadeflow.errors import UnknownModelPriceError
from cascadeflow.harness.instrument.bridge import (
    DriveAsync,
    Handoff,
    PipelineSuspended,
    drive_sync,
    model_for,
    redact_strings,
)
from cascadeflow.harness.instrument.vendor import Vendor


async def _returns(value):
    return value


async def _hands_off():
    got = await Handoff()
    return f"resumed with {got}"


async def _sleeps():
    await asyncio.sleep(0)
    return "never"


def test_drive_sync_runs_a_coroutine_that_does_not_suspend():
    assert drive_sync(_returns(42)) == 42


def test_drive_sync_pauses_at_a_handoff_and_resumes_with_a_value():
    coro = _hands_off()
    assert isinstance(drive_sync(coro), Handoff)
    assert drive_sync(coro, value="the response") == "resumed with the response"


def test_drive_sync_throws_into_a_paused_coroutine():
    coro = _hands_off()
    drive_sync(coro)
    with pytest.raises(KeyError):
        drive_sync(coro, exc=KeyError("stream died"))


def test_drive_sync_refuses_a_coroutine_that_needs_an_event_loop():
    with pytest.raises(PipelineSuspended, match="synchronous ledger"):
        drive_sync(_sleeps())


async def test_drive_async_passes_real_suspensions_to_the_loop_and_stops_at_handoffs():
    async def sleeps_then_hands_off():
        await asyncio.sleep(0.001)
        return await Handoff()

    coro = sleeps_then_hands_off()
    assert isinstance(await DriveAsync(coro), Handoff)
    assert drive_sync(coro, value="done") == "done"
    assert await DriveAsync(_sleeps()) == "never"


def test_redaction_of_sdk_payloads_touches_text_only():
    payload = [
        {"role": "user", "content": [
            {"type": "text", "text": "mail a@b.io"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,4111111111111111"}},
        ]},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                                              "function": {"name": "f", "arguments": "{\"to\": \"a@b.io\"}"}}]},
        {"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {"to": "a@b.io"}}]},
    ]
    out = redact_strings(payload, ("email", "card"))
    assert out[0]["content"][0]["text"] == "mail [REDACTED_EMAIL]"
    assert out[0]["content"][1] == payload[0]["content"][1]  # image data untouched
    assert out[1]["tool_calls"][0]["function"]["arguments"] == "{\"to\": \"[REDACTED_EMAIL]\"}"
    assert out[2]["content"][0]["input"] == {"to": "[REDACTED_EMAIL]"}
    assert payload[0]["content"][0]["text"] == "mail a@b.io"  # the caller's objects are not modified


def test_model_for_prices_known_models_and_flags_unknown_ones():
    runtime = harness.default_runtime()
    openai_vendor = Vendor("openai", "api.openai.com")
    known, unpriced = model_for(runtime, openai_vendor, "gpt-4o-mini", "observe")
    assert known.id == "openai/gpt-4o-mini" and not unpriced
    assert model_for(runtime, openai_vendor, "gpt-4o-mini", "observe")[0] == known
    free, unpriced = model_for(runtime, openai_vendor, "house-model-7", "observe")
    assert unpriced and free.input_price_per_million == 0
    with pytest.raises(UnknownModelPriceError, match="house-model-7"):
        model_for(runtime, openai_vendor, "house-model-7", "enforce")
