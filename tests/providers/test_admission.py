"""Admission gates: bounded in flight, priority order under pressure, deadlines refused cleanly, rate limits."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from loopback import ManualClock, Reply, wait_until

from cascadeflow.errors import AdmissionRefused, ConfigurationError
from cascadeflow.messages import build_request
from cascadeflow.providers.admission import (
    Admission,
    AdmissionLimits,
    Gate,
    TokenBucket,
    priority_of,
    rate_limit_headers,
)
from cascadeflow.providers.http import BreakerSettings, CircuitBreakers, HttpOptions
from cascadeflow.providers.openai_chat import OpenAIChat

FAR = 3600.0



def far() -> float:
    return time.monotonic() + FAR


def test_priority_comes_from_the_severity_in_metadata():
    assert priority_of({"severity": "P0"}) < priority_of({"severity": "p1"}) < priority_of({})
    assert priority_of({"severity": "critical"}) == priority_of({"severity": "P0"})
    assert priority_of({"severity": "P4"}) > priority_of(None)
    assert priority_of({"severity": "unheard-of"}) == priority_of({})


@pytest.mark.parametrize("bad", [0, -1, 1.5, "8", True, float("nan")])
def test_invalid_in_flight_limit_is_refused_at_construction(bad):
    with pytest.raises(ConfigurationError, match="max_in_flight"):
        AdmissionLimits(max_in_flight=bad)


@pytest.mark.parametrize("bad", [0, -5, float("inf"), "60"])
def test_invalid_rate_limits_are_refused_at_construction(bad):
    with pytest.raises(ConfigurationError, match="requests_per_minute"):
        AdmissionLimits(requests_per_minute=bad)


async def test_no_more_than_the_limit_is_in_flight():
    gate = Gate(limits=AdmissionLimits(max_in_flight=3))
    peak = 0

    async def call() -> None:
        nonlocal peak
        await gate.acquire(priority=2, deadline=far())
        peak = max(peak, gate.in_flight)
        await asyncio.sleep(0.001)
        gate.release()

    await asyncio.gather(*(call() for _ in range(50)))
    assert peak == 3 and gate.in_flight == 0 and gate.queued == 0


async def test_under_pressure_p0_and_p1_go_before_lower_severities_and_fifo_within_one():
    gate = Gate(limits=AdmissionLimits(max_in_flight=1))
    await gate.acquire(priority=2, deadline=far())  # the one slot is taken: everything below queues
    order: list[str] = []

    async def call(name: str, priority: int) -> None:
        await gate.acquire(priority=priority, deadline=far())
        order.append(name)
        gate.release()

    tasks = []
    for name, priority in [("p3-a", 3), ("p2-a", 2), ("p1-a", 1), ("p3-b", 3), ("p0-a", 0), ("p1-b", 1)]:
        tasks.append(asyncio.create_task(call(name, priority)))
        await asyncio.sleep(0)  # enqueue in this order
    gate.release()
    await asyncio.gather(*tasks)
    assert order == ["p0-a", "p1-a", "p1-b", "p2-a", "p3-a", "p3-b"]


async def test_a_queued_call_past_its_deadline_is_refused_and_takes_no_slot():
    gate = Gate(limits=AdmissionLimits(max_in_flight=1))
    await gate.acquire(priority=2, deadline=far())
    with pytest.raises(AdmissionRefused, match="nothing was sent"):
        await gate.acquire(priority=2, deadline=time.monotonic() + 0.05, what="openai/m")
    gate.release()
    assert gate.in_flight == 0
    assert await gate.acquire(priority=2, deadline=far()) == 0.0  # the refused waiter left no trace


async def test_a_cancelled_waiter_passes_its_slot_on():
    gate = Gate(limits=AdmissionLimits(max_in_flight=1))
    await gate.acquire(priority=2, deadline=far())
    cancelled = asyncio.create_task(gate.acquire(priority=0, deadline=far()))
    later = asyncio.create_task(gate.acquire(priority=3, deadline=far()))
    await asyncio.sleep(0)
    cancelled.cancel()
    gate.release()
    await asyncio.wait_for(later, 5)
    assert gate.in_flight == 1
    with pytest.raises(asyncio.CancelledError):
        await cancelled


def test_a_waiter_on_another_event_loop_is_woken_through_its_loop():
    gate = Gate(limits=AdmissionLimits(max_in_flight=1))

    async def wait_for_slot() -> float:
        waited = await gate.acquire(priority=2, deadline=far())
        gate.release()
        return waited

    async def both() -> float:
        await gate.acquire(priority=2, deadline=far())  # this loop holds the only slot
        other = asyncio.create_task(asyncio.to_thread(asyncio.run, wait_for_slot()))  # another thread and loop
        while gate.queued == 0:
            await asyncio.sleep(0.001)
        gate.release()
        return await asyncio.wait_for(other, 10)

    assert asyncio.run(both()) > 0
    assert gate.in_flight == 0


def test_token_bucket_paces_in_order_once_empty():
    clock = ManualClock()
    bucket = TokenBucket(per_minute=60, clock=clock)  # one per second
    assert [bucket.take(1) for _ in range(60)] == [0.0] * 60
    assert bucket.take(1) == pytest.approx(1.0)
    assert bucket.take(1) == pytest.approx(2.0)
    clock.advance(2.0)
    assert bucket.take(1) == pytest.approx(1.0)


async def test_requests_per_minute_refuses_a_call_the_limit_would_delay_past_its_deadline():
    gate = Gate(limits=AdmissionLimits(max_in_flight=10, requests_per_minute=2))
    for _ in range(2):
        assert await gate.acquire(priority=2, deadline=far()) == 0.0
        gate.release()
    with pytest.raises(AdmissionRefused, match="rate limit"):
        await gate.acquire(priority=2, deadline=time.monotonic() + 1.0)
    assert gate.in_flight == 0


async def test_tokens_per_minute_counts_the_calls_tokens_only_when_limited():
    counted = []

    def tokens() -> int:
        counted.append(1)
        return 500

    unlimited = Gate(limits=AdmissionLimits())
    await unlimited.acquire(priority=2, deadline=far(), tokens=tokens)
    assert counted == []
    limited = Gate(limits=AdmissionLimits(tokens_per_minute=1000))
    await limited.acquire(priority=2, deadline=far(), tokens=tokens)
    await limited.acquire(priority=2, deadline=far(), tokens=tokens)
    with pytest.raises(AdmissionRefused):
        await limited.acquire(priority=2, deadline=time.monotonic() + 1.0, tokens=tokens)


def test_rate_limit_headers_of_both_spellings_are_read():
    assert rate_limit_headers({"x-ratelimit-limit-requests": "500", "x-ratelimit-remaining-requests": "499",
                               "x-ratelimit-limit-tokens": "30000"}) == {
        "requests": (500.0, 499.0), "tokens": (30000.0, None)}
    assert rate_limit_headers({"anthropic-ratelimit-requests-limit": "50",
                               "anthropic-ratelimit-requests-remaining": "0"}) == {"requests": (50.0, 0.0)}
    assert rate_limit_headers({"x-ratelimit-limit-requests": "lots"}) == {}


async def test_a_provider_reporting_no_requests_left_paces_the_next_call():
    gate = Gate(limits=AdmissionLimits())
    gate.observe_headers({"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "0"})
    with pytest.raises(AdmissionRefused, match="rate limit"):
        await gate.acquire(priority=2, deadline=time.monotonic() + 0.5)


def test_model_limits_take_precedence_over_the_providers():
    admission = Admission(default=AdmissionLimits(max_in_flight=64))
    admission.configure("openai", AdmissionLimits(max_in_flight=8))
    admission.configure("openai", AdmissionLimits(max_in_flight=2), model="gpt-4o")
    assert admission.gate("openai", "gpt-4o").limits.max_in_flight == 2
    assert admission.gate("openai", "gpt-4o-mini").limits.max_in_flight == 8
    assert admission.gate("openai", "gpt-4o-mini") is admission.gate("openai", "o3")  # shared provider gate
    assert admission.gate("groq", "llama").limits.max_in_flight == 64
    with pytest.raises(ConfigurationError):
        admission.configure("openai", {"max_in_flight": 3})  # type: ignore[arg-type]


async def test_queueing_never_opens_the_breaker_and_refused_calls_are_not_sent(openai_server):
    release = threading.Event()
    openai_server.enqueue(text="ok", hold=release)
    admission = Admission(default=AdmissionLimits(max_in_flight=1))
    breakers = CircuitBreakers(settings=BreakerSettings(failure_threshold=1, cooldown=60), clock=ManualClock())
    chat = OpenAIChat("vllm", base_url=openai_server.base_url,
                      http=HttpOptions(breakers=breakers, admission=admission))
    first = asyncio.create_task(chat.complete(build_request("hi", model="m")))
    assert await wait_until(lambda: len(openai_server.requests) == 1)
    for _ in range(3):
        with pytest.raises(AdmissionRefused):
            await chat.complete(build_request("hi", model="m", timeout=0.05))
    release.set()
    response = await first
    assert len(openai_server.requests) == 1 and breakers.get("vllm", "m").state == "closed"
    assert response.queued_ms == 0.0 and [a.outcome for a in response.http_attempts] == ["answered"]


async def test_time_queued_is_reported_apart_from_the_providers_latency(openai_server):
    release = threading.Event()
    openai_server.enqueue(text="ok", hold=release)  # the first call holds the only slot until released
    openai_server.enqueue(text="ok")
    chat = OpenAIChat("vllm", base_url=openai_server.base_url,
                      http=HttpOptions(breakers=CircuitBreakers(),
                                       admission=Admission(default=AdmissionLimits(max_in_flight=1))))
    first = asyncio.create_task(chat.complete(build_request("hi", model="m")))
    assert await wait_until(lambda: len(openai_server.requests) == 1)
    second = asyncio.create_task(chat.complete(build_request("hi", model="m")))
    await asyncio.sleep(0.2)
    release.set()
    await first
    queued = await second
    assert queued.queued_ms > 0
    assert queued.latency_ms < queued.queued_ms  # its own answer was immediate; the wait was the queue


async def test_an_adapter_sends_queued_calls_by_severity(openai_server):
    release = threading.Event()
    openai_server.enqueue(text="ok", hold=release)
    openai_server.default = Reply(text="ok")
    chat = OpenAIChat("vllm", base_url=openai_server.base_url,
                      http=HttpOptions(breakers=CircuitBreakers(),
                                       admission=Admission(default=AdmissionLimits(max_in_flight=1))))
    first = asyncio.create_task(chat.complete(build_request("holder", model="m")))
    assert await wait_until(lambda: len(openai_server.requests) == 1)
    queued = []
    for severity in ("P3", "P2", "P1", "P0"):
        queued.append(asyncio.create_task(chat.complete(build_request(severity, model="m",
                                                                      metadata={"severity": severity}))))
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)
    release.set()
    await asyncio.gather(first, *queued)
    order = [r.json["messages"][0]["content"] for r in openai_server.requests]
    assert order == ["holder", "P0", "P1", "P2", "P3"]


async def test_an_adapter_paces_after_the_provider_reports_no_requests_left(openai_server):
    openai_server.default = Reply(text="ok", headers={"x-ratelimit-limit-requests": "60",
                                                      "x-ratelimit-remaining-requests": "0"})
    chat = OpenAIChat("vllm", base_url=openai_server.base_url,
                      http=HttpOptions(breakers=CircuitBreakers(), admission=Admission()))
    await chat.complete(build_request("hi", model="m"))
    with pytest.raises(AdmissionRefused, match="rate limit"):
        await chat.complete(build_request("hi", model="m", timeout=0.5))
    assert len(openai_server.requests) == 1  # the second call was held back, not answered with a 429
