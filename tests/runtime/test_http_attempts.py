"""HTTP requests of unknown outcome inside one attempt: each is reserved before it is re-sent, charged its worst
case, and listed in the attempt's record; refusals and connection failures cost nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from loopback import RecordedSleep, Reply

from cascadeflow.budget.backends.memory import MemoryLedger
from cascadeflow.errors import AdmissionRefused, MalformedResponseError, ServerError
from cascadeflow.messages import build_request
from cascadeflow.models import ModelConfig
from cascadeflow.pricing import to_micro_usd
from cascadeflow.providers.admission import Admission, AdmissionLimits
from cascadeflow.providers.http import CircuitBreakers, HttpOptions, RetryPolicy
from cascadeflow.providers.openai_chat import OpenAIChat
from cascadeflow.runtime.pipeline import Charge, Runtime

LIMIT = 10_000_000  # $10


def setup(openai_server, *, ledger=None, max_attempts: int = 3):
    model = ModelConfig(name="gpt-4o-mini", provider="openai", base_url=openai_server.base_url, api_key="sk-test")
    http = HttpOptions(sleep=RecordedSleep(), breakers=CircuitBreakers(), retry=RetryPolicy(max_attempts=max_attempts))
    runtime = Runtime(ledger=ledger, resolve_provider=lambda cfg: OpenAIChat.from_config(cfg, http=http))
    return model, runtime


async def test_a_malformed_200_retried_is_charged_its_worst_case_on_top_of_the_answer(openai_server):
    openai_server.enqueue(body=b"{not json")
    openai_server.enqueue(text="ok", usage={"input": 10, "output": 2})
    ledger = MemoryLedger()
    model, runtime = setup(openai_server, ledger=ledger)
    charge = Charge("test:http-attempts:malformed", LIMIT)
    call = runtime.new_call(charges=[charge])
    response, record = await runtime.attempt(model, build_request("hi", max_tokens=100), call)
    assert [a.outcome for a in response.http_attempts] == ["unknown", "answered"]
    answer_cost = runtime.price_book.cost(model, response.usage)
    assert record.cost == answer_cost + record.reserved_usd
    assert "unknown outcome" in record.error and record.status == "ok"
    state = ledger.state(charge.key)
    assert state.spent == to_micro_usd(answer_cost) + to_micro_usd(record.reserved_usd) and state.reserved == 0
    entry = record.to_dict()
    assert [a["outcome"] for a in entry["http_attempts"]] == ["unknown", "answered"]
    assert entry["http_attempts"][0]["error"] == "MalformedResponseError"


async def test_every_unknown_request_of_a_failed_attempt_is_charged(openai_server):
    for _ in range(3):
        openai_server.enqueue(body=b"garbage")
    ledger = MemoryLedger()
    model, runtime = setup(openai_server, ledger=ledger)
    charge = Charge("test:http-attempts:all-unknown", LIMIT)
    call = runtime.new_call(charges=[charge])
    with pytest.raises(MalformedResponseError):
        await runtime.attempt(model, build_request("hi", max_tokens=100), call)
    record = call.attempts[0]
    assert len(record.http_attempts) == 3
    assert record.cost == record.reserved_usd * 3
    assert ledger.state(charge.key).spent == to_micro_usd(record.reserved_usd) * 3


async def test_a_resend_that_does_not_fit_the_budget_is_not_sent(openai_server):
    openai_server.enqueue(body=b"{not json")
    openai_server.enqueue(text="never sent")
    ledger = MemoryLedger()
    model, runtime = setup(openai_server, ledger=ledger)
    request = build_request("hi", max_tokens=100)
    probe = runtime.new_call()
    worst = runtime.worst_case(model, request, probe)
    charge = Charge("test:http-attempts:tight", to_micro_usd(worst * Decimal("1.5")))  # room for one request
    call = runtime.new_call(charges=[charge])
    with pytest.raises(MalformedResponseError):
        await runtime.attempt(model, request, call)
    assert len(openai_server.requests) == 1 and openai_server.pending == 1
    assert call.attempts[0].cost == worst


async def test_refusals_cost_nothing_and_are_listed(openai_server):
    openai_server.enqueue(status=503)
    openai_server.enqueue(status=503)
    ledger = MemoryLedger()
    model, runtime = setup(openai_server, ledger=ledger, max_attempts=2)
    charge = Charge("test:http-attempts:refused", LIMIT)
    call = runtime.new_call(charges=[charge])
    with pytest.raises(ServerError):
        await runtime.attempt(model, build_request("hi", max_tokens=100), call)
    record = call.attempts[0]
    assert [(a.outcome, a.status) for a in record.http_attempts] == [("refused", 503), ("refused", 503)]
    assert record.cost == 0 and ledger.state(charge.key).spent == 0


async def test_the_usual_attempt_keeps_the_plain_record_shape(openai_server):
    openai_server.default = Reply(text="ok")
    model, runtime = setup(openai_server)
    call = runtime.new_call()
    response, record = await runtime.attempt(model, build_request("hi", max_tokens=100), call)
    assert [a.outcome for a in response.http_attempts] == ["answered"]
    assert "http_attempts" not in record.to_dict() and record.queued_ms == 0.0


async def test_a_call_refused_by_admission_is_settled_at_nothing(openai_server):
    ledger = MemoryLedger()
    model = ModelConfig(name="gpt-4o-mini", provider="openai", base_url=openai_server.base_url, api_key="sk-test")
    admission = Admission(default=AdmissionLimits(requests_per_minute=1))
    http = HttpOptions(sleep=RecordedSleep(), breakers=CircuitBreakers(), admission=admission)
    runtime = Runtime(ledger=ledger, resolve_provider=lambda cfg: OpenAIChat.from_config(cfg, http=http))
    openai_server.default = Reply(text="ok")
    charge = Charge("test:http-attempts:admission", LIMIT)
    await runtime.attempt(model, build_request("hi", max_tokens=100), runtime.new_call(charges=[charge]))
    spent = ledger.state(charge.key).spent
    call = runtime.new_call(charges=[charge])
    with pytest.raises(AdmissionRefused):
        await runtime.attempt(model, build_request("hi", max_tokens=100, timeout=0.5), call)
    assert call.attempts[0].cost == 0 and len(openai_server.requests) == 1
    assert ledger.state(charge.key).spent == spent and ledger.state(charge.key).reserved == 0
