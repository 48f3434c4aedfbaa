"""A ledger store that goes down: a paid answer still reaches the caller and its audit record is written with
`budget_remaining` unknown; a call refused because the store is down before it is audited. The store is a
real Redis server behind a TCP proxy the test cuts in the middle of the call."""

from __future__ import annotations

import logging
import uuid

import pytest
from budget_support import REDIS_URL, drop_backend, require_redis
from store_proxy import CuttableProxy

from cascadeflow import BudgetBackendUnavailable, CascadeAgent, ModelConfig, harness
from cascadeflow.budget import open_ledger
from cascadeflow.flow.client import CascadeFlow
from cascadeflow.runtime.pipeline import Runtime
from cascadeflow.testing import ScriptedProvider, capture_audit, make_response

MODEL = ModelConfig(name="m", provider="openai", input_price_per_million=1, output_price_per_million=4)
STRONG = ModelConfig(name="s", provider="openai", input_price_per_million=10, output_price_per_million=40)
ANSWER = "The checkout pods were OOM-killed after the deploy."


@pytest.fixture
def proxied_redis():
    """(proxy, ledger URL through it) for a fresh key prefix on the test Redis server."""
    from urllib.parse import urlsplit

    require_redis()
    parts = urlsplit(REDIS_URL)
    proxy = CuttableProxy(parts.hostname or "127.0.0.1", parts.port or 6379)
    prefix = f"onepath-store-down-{uuid.uuid4().hex[:12]}"
    yield proxy, f"redis://127.0.0.1:{proxy.port}{parts.path or '/0'}?prefix={prefix}"
    drop_backend(f"{REDIS_URL}?prefix={prefix}")


@pytest.fixture(autouse=True)
def clean_harness():
    harness.reset()
    yield
    harness.reset()


def _answering_then_cutting(proxy: CuttableProxy) -> ScriptedProvider:
    """A provider whose answer arrives just as the store goes down (before the settlement)."""
    def answer(request):
        proxy.cut()
        return make_response(request, ANSWER)
    return ScriptedProvider(default=answer)


def test_a_paid_answer_reaches_the_facades_caller_when_the_store_goes_down_mid_call(proxied_redis, caplog):
    proxy, url = proxied_redis
    runtime = Runtime(resolve_provider=_answering_then_cutting(proxy).resolver(), ledger=open_ledger(url))
    sink = capture_audit(runtime)
    with harness.run(budget=1.0, mode="enforce"), caplog.at_level(logging.ERROR):
        result = CascadeFlow(runtime=runtime).complete(model=MODEL, messages="why is checkout down?")
    assert result.content == ANSWER and result.cost > 0
    record = sink.records[-1]
    assert record.action == "allow" and record.error is None and record.budget_remaining is None
    assert record.cost_usd == float(result.cost)
    assert any("ledger unreachable while settling" in r.getMessage() for r in caplog.records)


async def test_a_paid_answer_reaches_the_agents_caller_when_the_store_goes_down_mid_call(proxied_redis):
    proxy, url = proxied_redis
    runtime = Runtime(resolve_provider=_answering_then_cutting(proxy).resolver(), ledger=open_ledger(url))
    sink = capture_audit(runtime)
    agent = CascadeAgent(models=[MODEL, STRONG], runtime=runtime)
    with harness.run(budget=1.0, mode="enforce"):
        result = await agent.run("why is checkout down?")
    assert result.content == ANSWER
    record = sink.records[-1]
    assert record.error is None and record.budget_remaining is None and record.cost_usd > 0


def test_a_call_refused_because_the_store_is_down_is_audited(proxied_redis):
    proxy, url = proxied_redis
    provider = ScriptedProvider(default=ANSWER)
    runtime = Runtime(resolve_provider=provider.resolver(), ledger=open_ledger(url))
    sink = capture_audit(runtime)
    proxy.cut()
    with harness.run(budget=1.0, mode="enforce"), pytest.raises(BudgetBackendUnavailable):
        CascadeFlow(runtime=runtime).complete(model=MODEL, messages="why is checkout down?")
    assert provider.requests == []  # nothing was sent
    (record,) = sink.records
    assert record.action == "error" and "BudgetBackendUnavailable" in record.error
    assert record.cost_usd == 0 and record.budget_remaining is None


def test_a_paid_sdk_answer_reaches_the_caller_in_enforce_mode_when_the_store_goes_down(
        proxied_redis, openai_server, tmp_path, monkeypatch):
    import json

    import httpx
    import openai

    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)  # the loopback host stands in for OpenAI
    proxy, url = proxied_redis
    audit = tmp_path / "audit.jsonl"
    harness.init(mode="enforce", ledger_url=url, audit=str(audit))
    openai_server.enqueue(text="All green.", usage={"input": 7, "output": 2})
    # the store goes down once the host has answered, before the pipeline settles the call
    http = httpx.Client(event_hooks={"response": [lambda response: proxy.cut()]})
    client = openai.OpenAI(base_url=openai_server.base_url, api_key="sk-test", max_retries=0, http_client=http)
    with harness.run(budget=1.0):
        answer = client.chat.completions.create(model="gpt-4o-mini", max_tokens=16,
                                                messages=[{"role": "user", "content": "healthy?"}])
    assert answer.choices[0].message.content == "All green."
    (record,) = [json.loads(line) for line in audit.read_text().splitlines()]
    assert record["action"] == "allow" and record["error"] is None and record["budget_remaining"] is None
    assert (record["input_tokens"], record["output_tokens"]) == (7, 2)
