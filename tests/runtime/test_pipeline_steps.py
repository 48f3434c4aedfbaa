"""Steps plugged into the one pipeline: the cache step answers at the call's start, before any reservation
(hit: nothing reserved, nothing sent, $0, marked as a hit) and is handed the answer at its end; a record
consumer (metrics) gets the call's one record."""

from __future__ import annotations

import pytest

from cascadeflow import CacheConfig, ModelConfig, PolicyViolation
from cascadeflow.cache import ResponseCache
from cascadeflow.cache.backends.memory import MemoryCacheBackend
from cascadeflow.flow.client import CascadeFlow
from cascadeflow.messages import build_request
from cascadeflow.runtime.pipeline import Charge, Runtime
from cascadeflow.testing import MemoryLedger, ScriptedProvider, capture_audit

MODEL = ModelConfig(name="m", provider="openai", input_price_per_million=1, output_price_per_million=4)
BUDGET = Charge("test:steps", 1_000_000)


class CountingLedger(MemoryLedger):
    def __init__(self) -> None:
        super().__init__()
        self.reserved: list[str] = []

    def reserve(self, reservation_id, charges, amount_micro, lease_seconds):
        self.reserved.append(reservation_id)
        return super().reserve(reservation_id, charges, amount_micro, lease_seconds)


async def _call(runtime: Runtime, text: str, cache=None):
    """One call as every facade makes it: the cache step, else an attempt; then finish."""
    call = runtime.new_call(model_requested=MODEL.id, charges=[BUDGET])
    request = build_request(text, max_tokens=50)
    served = runtime.from_cache(call, request, (MODEL,), cache=cache)
    if served is not None:
        return served.answer.response(), served.record
    response, attempt = await runtime.attempt(MODEL, request, call)
    return response, runtime.finish(call, action="allow", model_selected=attempt.model, response=response)


async def test_a_cache_hit_reserves_nothing_sends_nothing_costs_nothing_and_is_marked():
    provider, ledger = ScriptedProvider(default="the pool is exhausted"), CountingLedger()
    cache = ResponseCache(CacheConfig(), backend=MemoryCacheBackend())
    runtime = Runtime(resolve_provider=provider.resolver(), ledger=ledger)
    first, miss = await _call(runtime, "why is redis slow?", cache)
    spent = BUDGET.limit_micro - ledger.remaining(BUDGET)
    hit_response, hit = await _call(runtime, "why is redis slow?", cache)
    assert hit_response.content == first.content == "the pool is exhausted"
    assert len(provider.requests) == 1 and len(ledger.reserved) == 1  # the hit: no request, no reservation
    assert miss.cost_usd > 0 and miss.action == "allow" and miss.metadata["cache"] == {"hit": False}
    assert hit.action == "cache_hit" and hit.cost_usd == 0 and hit.tiers == []
    assert hit.metadata["cache"]["saved_usd"] == miss.cost_usd
    assert BUDGET.limit_micro - ledger.remaining(BUDGET) == spent  # the hit spent nothing


class RecordingStep:
    """A cache step that never serves and notes what the Runtime hands it."""

    def __init__(self) -> None:
        self.served: list[str] = []
        self.remembered: list[tuple[str, str | None]] = []

    def cache_for(self, cache):
        return "the configured cache"

    def serve(self, runtime, call, request, route, *, quality=None, cache=None):
        self.served.append(call.request_id)
        call.cache_probe = "looked up"

    def remember(self, call, response, model_selected):
        self.remembered.append((response.content, model_selected))
        return True


async def test_a_cache_step_is_asked_at_the_call_start_and_handed_the_answer_at_its_end():
    step = RecordingStep()
    runtime = Runtime(resolve_provider=ScriptedProvider(default="fine").resolver(), cache=step)
    _, record = await _call(runtime, "hello")
    assert step.served == [record.request_id] and step.remembered == [("fine", MODEL.id)]


async def test_the_policy_refuses_before_the_lookup_and_a_call_never_looked_up_stores_nothing():
    class Refuse:
        def before_attempt(self, model, request, call):
            raise PolicyViolation("not this one", policy="test")

    step = RecordingStep()
    runtime = Runtime(resolve_provider=ScriptedProvider(default="x").resolver(), cache=step, policy=Refuse())
    call = runtime.new_call()
    with pytest.raises(PolicyViolation) as refused:
        runtime.from_cache(call, build_request("hi"), (MODEL,))
    runtime.finish(call, action="stop", model_selected=None, response=None, error=refused.value)
    assert step.served == []  # refused by the policy: never looked up
    unlooked = Runtime(resolve_provider=ScriptedProvider(default="y").resolver(), cache=step)
    await CascadeFlow(runtime=unlooked).acomplete(model=MODEL, messages="hello")  # looked up: stored
    plain = unlooked.new_call()
    response, attempt = await unlooked.attempt(MODEL, build_request("hi"), plain)  # never looked up
    unlooked.finish(plain, action="allow", model_selected=attempt.model, response=response)
    assert len(step.served) == 1 and step.remembered == [("y", MODEL.id)]


async def test_the_first_attempt_after_the_cache_step_is_not_checked_again():
    checked = []

    class Count:
        def before_attempt(self, model, request, call):
            checked.append(model.id)
            return model, request

        def after_attempt(self, model, response, call):
            pass

    runtime = Runtime(resolve_provider=ScriptedProvider(default="x").resolver(), cache=RecordingStep(),
                      policy=Count())
    await CascadeFlow(runtime=runtime).acomplete(model=MODEL, messages="hello")
    assert checked == [MODEL.id]


def test_a_record_consumer_gets_the_same_one_record_as_the_audit_sink():
    runtime = Runtime(resolve_provider=ScriptedProvider(default="fine").resolver())
    audit, metrics = capture_audit(runtime), capture_audit(runtime)
    result = CascadeFlow(runtime=runtime).complete(model=MODEL, messages="hello", metadata={"alert_id": "A-1"})
    (record,) = audit.records
    assert metrics.records == [record] and metrics.records[0] is record
    assert record.request_id == result.request_id and record.metadata == {"alert_id": "A-1"}
