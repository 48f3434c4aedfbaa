"""Runtime.attempt: what a failed attempt costs, and that money is settled on every path."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cascadeflow import ModelConfig
from cascadeflow.errors import MalformedResponseError, ProviderTimeoutError, RateLimitError, ServerError
from cascadeflow.messages import build_request
from cascadeflow.runtime.pipeline import Charge, Runtime
from cascadeflow.testing import MemoryLedger, ScriptedProvider


class SdkStatusError(Exception):
    """What the official SDKs raise for an HTTP error answer (openai/anthropic APIStatusError carry status_code)."""

    def __init__(self, status_code: int):
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


MODEL = ModelConfig(name="m", provider="openai", input_price_per_million=1, output_price_per_million=4)
BUDGET = Charge("session:pipeline", 1_000_000)


@pytest.mark.parametrize("error, billed", [
    (ProviderTimeoutError("read timeout"), True),
    (MalformedResponseError("stream cut"), True),
    (ServerError("boom", retry_after=None), False),
    (RateLimitError("slow down", retry_after=1.0), False),
    (SdkStatusError(429), False),  # the provider refused: nothing was generated
    (ConnectionResetError("peer went away"), True),  # an unknown failure mid-call may have been billed
])
async def test_failed_attempt_is_charged_its_worst_case_only_when_it_may_have_been_billed(error, billed) -> None:
    ledger = MemoryLedger()
    runtime = Runtime(resolve_provider=ScriptedProvider([error]).resolver(), ledger=ledger)
    call = runtime.new_call(charges=[BUDGET])
    with pytest.raises(type(error)):
        await runtime.attempt(MODEL, build_request("hello", max_tokens=100), call)
    record = call.attempts[0]
    assert record.status == "error"
    expected = record.reserved_usd if billed else Decimal(0)
    assert record.cost == expected
    state = ledger.state(BUDGET.key)
    assert state.reserved == 0  # settled either way, nothing left held
    assert state.spent == (int((expected * 1_000_000).to_integral_value(rounding="ROUND_CEILING")))


async def test_successful_attempt_settles_to_the_actual_cost() -> None:
    ledger = MemoryLedger()
    runtime = Runtime(resolve_provider=ScriptedProvider(["four words of answer"]).resolver(), ledger=ledger)
    call = runtime.new_call(charges=[BUDGET])
    response, record = await runtime.attempt(MODEL, build_request("hello", max_tokens=100), call)
    assert record.cost == Decimal(response.usage.input_tokens * 1 + response.usage.output_tokens * 4) / 1_000_000
    assert record.cost < record.reserved_usd
    assert ledger.state(BUDGET.key).reserved == 0


class _SlowToBuild:
    """An adapter whose construction and first call carry one-time setup (a pool, a model load)."""

    name = "openai"

    def __init__(self, setup_seconds: float) -> None:
        self.setup_seconds = setup_seconds

    async def complete(self, request):  # type: ignore[no-untyped-def]
        import asyncio
        import dataclasses

        await asyncio.sleep(self.setup_seconds)  # what a first call waits for before the model runs
        answer = await ScriptedProvider(["ready"]).complete(request)
        return dataclasses.replace(answer, setup_seconds=self.setup_seconds)


async def test_one_time_setup_is_not_counted_in_the_recorded_latency() -> None:
    import time

    built: list[float] = []

    def resolve(model):  # type: ignore[no-untyped-def]
        time.sleep(0.05)  # building the adapter: before the clock
        built.append(time.perf_counter())
        return _SlowToBuild(0.2)

    runtime = Runtime(resolve_provider=resolve)
    call = runtime.new_call()
    before = time.perf_counter()
    _response, record = await runtime.attempt(MODEL, build_request("hello", max_tokens=10), call)
    wall_ms = (time.perf_counter() - before) * 1000
    # Arithmetic, not a timing bound: the recorded latency is the wall time less the adapter build and the
    # setup the provider reported, so it cannot exceed what is left of the wall time after both.
    assert built and record.latency_ms <= wall_ms - 200 - 50
    assert record.latency_ms >= 0
