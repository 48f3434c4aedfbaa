"""Steps plugged into the one pipeline: a response cache answers before any reservation (hit: nothing
reserved, nothing sent, $0, marked as a hit); a record consumer (metrics) gets the call's one record."""

from __future__ import annotations

import pytest

from cascadeflow import ModelConfig, PolicyViolation
from cascadeflow.messages import build_request
from cascadeflow.runtime.client import CascadeFlow
from cascadeflow.runtime.pipeline import Charge, Runtime
from cascadeflow.testing import MemoryLedger, ScriptedProvider, capture_audit

MODEL = ModelConfig(name="m", provider="openai", input_price_per_million=1, output_price_per_million=4)
BUDGET = Charge("test:steps", 1_000_000)


class DictCache:
    """An exact response cache keyed by model and messages."""

    def __init__(self) -> None:
        self.answers: dict = {}
        self.lookups = 0

    def lookup(self, model, request):
        self.lookups += 1
        return self.answers.get((model.id, request.messages))

    def store(self, model, request, response):
        self.answers[(model.id, request.messages)] = response


class CountingLedger(MemoryLedger):
    def __init__(self) -> None:
        super().__init__()
        self.reserved: list[str] = []

    def reserve(self, reservation_id, charges, amount_micro, lease_seconds):
        self.reserved.append(reservation_id)
        return super().reserve(reservation_id, charges, amount_micro, lease_seconds)


async def _call(runtime: Runtime, text: str):
    call = runtime.new_call(model_requested=MODEL.id, charges=[BUDGET])
    response, attempt = await runtime.attempt(MODEL, build_request(text, max_tokens=50), call)
    record = runtime.finish(call, action="allow", model_selected=attempt.model, response=response)
    return response, attempt, record


async def test_a_cache_hit_reserves_nothing_sends_nothing_costs_nothing_and_is_marked():
    provider, ledger, cache = ScriptedProvider(default="the pool is exhausted"), CountingLedger(), DictCache()
    runtime = Runtime(resolve_provider=provider.resolver(), ledger=ledger, cache=cache)
    first, miss, _ = await _call(runtime, "why is redis slow?")
    spent = BUDGET.limit_micro - ledger.remaining(BUDGET)
    hit_response, hit, record = await _call(runtime, "why is redis slow?")
    assert hit_response.content == first.content == "the pool is exhausted"
    assert len(provider.requests) == 1 and len(ledger.reserved) == 1  # the hit: no request, no reservation
    assert miss.cost > 0 and not miss.cache_hit
    assert hit.cache_hit and hit.cost == 0 and hit.reserved_usd is None
    assert record.cost_usd == 0 and record.tiers[0]["cache_hit"] is True
    assert BUDGET.limit_micro - ledger.remaining(BUDGET) == spent  # the hit spent nothing


async def test_a_call_the_policy_refuses_is_never_answered_from_the_cache():
    class Refuse:
        def before_attempt(self, model, request, call):
            raise PolicyViolation("not this one", policy="test")

    cache = DictCache()
    runtime = Runtime(resolve_provider=ScriptedProvider(default="x").resolver(), cache=cache, policy=Refuse())
    with pytest.raises(PolicyViolation):
        await runtime.attempt(MODEL, build_request("hi"), runtime.new_call())
    assert cache.lookups == 0


def test_a_record_consumer_gets_the_same_one_record_as_the_audit_sink():
    runtime = Runtime(resolve_provider=ScriptedProvider(default="fine").resolver())
    audit, metrics = capture_audit(runtime), capture_audit(runtime)
    result = CascadeFlow(runtime=runtime).complete(model=MODEL, messages="hello", metadata={"alert_id": "A-1"})
    (record,) = audit.records
    assert metrics.records == [record] and metrics.records[0] is record
    assert record.request_id == result.request_id and record.metadata == {"alert_id": "A-1"}
