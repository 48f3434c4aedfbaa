"""The cache step runs after the policy of the call's first tier: a call the policy refuses is refused even
when its answer is cached, a redacted call is looked up and stored under what is actually sent, and observe
mode records what enforce mode would have done. Through CascadeFlow and CascadeAgent (the SDK side is in
tests/harness/test_instrument_cache_policy.py)."""

from __future__ import annotations

import uuid

import pytest

import cascadeflow
from cascadeflow import CacheConfig, CascadeAgent, CascadeFlow, ModelConfig, QualityConfig, harness
from cascadeflow.cache import ResponseCache
from cascadeflow.cache.backends.memory import MemoryCacheBackend
from cascadeflow.errors import BudgetExceeded, PolicyViolation
from cascadeflow.runtime.pipeline import Runtime
from cascadeflow.testing import ScriptedProvider, capture_audit

MINI = ModelConfig(name="mini", provider="openai", input_price_per_million=1, output_price_per_million=2)
BIG = ModelConfig(name="big", provider="openai", input_price_per_million=10, output_price_per_million=40)
ANSWER = ("The pool is exhausted because the new release opens a connection per request and never returns it "
          "to the pool; roll back or raise the pool size while the leak is fixed.")
QUESTION = "why is the checkout pool exhausted after the deploy?"
ONLY_BIG = {"name": "only-big", "models": {"allowed": [BIG.id]}}
NO_EMAIL = {"name": "no-email", "pii": {"action": "block", "kinds": ["email"]}}
REDACT_EMAIL = {"name": "redact-email", "pii": {"action": "redact", "kinds": ["email"]}}


@pytest.fixture(autouse=True)
def clean_harness():
    harness.reset()
    yield
    harness.reset()


def fresh_cache() -> ResponseCache:
    return ResponseCache(CacheConfig(key_prefix=f"t{uuid.uuid4().hex}:"), backend=MemoryCacheBackend())


def flow_with(cache: ResponseCache, default: str = ANSWER):
    provider = ScriptedProvider(default=default)
    runtime = Runtime(resolve_provider=provider.resolver())
    return CascadeFlow(runtime=runtime, cache_config=cache), provider, capture_audit(runtime)


async def test_a_model_the_policy_disallows_is_refused_in_enforce_mode_though_its_answer_is_cached():
    flow, provider, audit = flow_with(fresh_cache())
    await flow.acomplete(MINI, QUESTION)  # cached outside any policy
    with harness.run(mode="enforce", compliance=ONLY_BIG), pytest.raises(PolicyViolation, match="not in allowed"):
        await flow.acomplete(MINI, QUESTION)
    assert len(provider.requests) == 1
    refused = audit.dicts()[-1]
    assert refused["action"] == "error" and "cache" not in refused and refused["cost_usd"] == 0


async def test_a_request_compliance_blocks_is_refused_though_an_identical_answer_is_cached():
    flow, provider, audit = flow_with(fresh_cache())
    question = "alice@example.com cannot check out: why?"
    await flow.acomplete(MINI, question)
    with harness.run(mode="enforce", compliance=NO_EMAIL), pytest.raises(PolicyViolation, match="1 email"):
        await flow.acomplete(MINI, question)
    assert len(provider.requests) == 1 and all(r["action"] != "cache_hit" for r in audit.dicts())


async def test_a_run_budget_that_is_spent_refuses_a_cached_answer_in_enforce_mode():
    flow, provider, _ = flow_with(fresh_cache())
    await flow.acomplete(MINI, QUESTION)
    with harness.run(mode="enforce", budget=0), pytest.raises(BudgetExceeded, match="run budget"):
        await flow.acomplete(MINI, QUESTION)
    assert len(provider.requests) == 1


async def test_a_per_call_cap_too_small_for_any_answer_refuses_a_cached_answer():
    flow, provider, _ = flow_with(fresh_cache())
    await flow.acomplete(BIG, QUESTION)
    with pytest.raises(BudgetExceeded, match="budget_limit"):
        await flow.acomplete(BIG, QUESTION, budget_limit=0.000001)
    assert len(provider.requests) == 1


async def test_a_redacted_request_is_keyed_on_what_is_sent_so_another_address_is_the_same_question():
    flow, provider, audit = flow_with(fresh_cache())
    with harness.run(mode="enforce", compliance=REDACT_EMAIL) as session:
        first = await flow.acomplete(MINI, "alice@example.com cannot check out: why?")
        again = await flow.acomplete(MINI, "bob@example.org cannot check out: why?")
    assert provider.requests[0].messages[0].content == "[REDACTED_EMAIL] cannot check out: why?"
    assert len(provider.requests) == 1  # the second call sends the same redacted text: served
    assert again.cache_hit and again.content == first.content
    # the redaction is decided once per call, not again by the attempt after the cache step
    redactions = [r for r in session.trace() if r.action == "redact"]
    assert len(redactions) == 2 and all(r.applied for r in redactions)
    hit = audit.dicts()[1]
    assert hit["action"] == "cache_hit" and "bob" not in str(hit["prompt"]) and "REDACTED" in str(hit["prompt"])


async def test_an_unredacted_answer_is_not_served_to_a_redacted_request():
    flow, provider, _ = flow_with(fresh_cache())
    question = "alice@example.com cannot check out: why?"
    await flow.acomplete(MINI, question)  # no policy: sent and stored as written
    with harness.run(mode="enforce", compliance=REDACT_EMAIL):
        again = await flow.acomplete(MINI, question)
    assert not again.cache_hit and len(provider.requests) == 2
    assert provider.requests[1].messages[0].content == "[REDACTED_EMAIL] cannot check out: why?"


async def test_observe_mode_records_the_refusal_it_would_make_and_no_would_be_hit():
    flow, provider, audit = flow_with(fresh_cache())
    question = "alice@example.com cannot check out: why?"
    await flow.acomplete(MINI, question)
    with harness.run(mode="observe", compliance=NO_EMAIL) as session:
        again = await flow.acomplete(MINI, question)
    assert not again.cache_hit and len(provider.requests) == 2  # observe mode changes nothing
    stop = next(r for r in session.trace() if r.action == "stop")
    assert stop.applied is False and "blocks it" in stop.reason
    record = audit.dicts()[-1]
    assert record["action"] == "allow" and "cache" not in record  # no would-be hit: it would have been refused
    assert any("the policy would have refused" in r.reason for r in session.trace())


async def test_observe_mode_records_a_would_be_hit_when_the_policy_lets_the_call_through():
    flow, provider, audit = flow_with(fresh_cache())
    await flow.acomplete(MINI, QUESTION)
    with harness.run(mode="observe", compliance=NO_EMAIL):
        await flow.acomplete(MINI, QUESTION)
    assert len(provider.requests) == 2
    assert audit.dicts()[-1]["cache"]["would_hit"] is True


async def test_a_cascade_whose_first_tier_the_policy_switches_is_keyed_on_the_model_it_sends_to():
    cache = fresh_cache()
    provider = ScriptedProvider(default=ANSWER)
    runtime = Runtime(resolve_provider=provider.resolver())
    agent = CascadeAgent(models=[MINI, BIG], quality_config=QualityConfig(threshold=0.3), runtime=runtime,
                         cache_config=cache)
    await agent.run(QUESTION)  # no policy: the drafter answers and is stored
    with harness.run(mode="enforce", compliance={"name": "no-mini", "models": {"denied": [MINI.id]}},
                     models=[BIG]) as session:
        switched = await agent.run(QUESTION)
        again = await agent.run(QUESTION)
    assert not switched.cache_hit and again.cache_hit  # the switched route is an entry of its own
    assert [r.model for r in provider.requests] == ["mini", "big"]
    switches = [r for r in session.trace() if r.action == "switch_model"]
    assert len(switches) == 2  # once per call: the first attempt reuses the cache step's vetting


async def test_a_cascade_refused_by_the_policy_is_refused_before_the_lookup():
    cache = fresh_cache()
    provider = ScriptedProvider(default=ANSWER)
    runtime = Runtime(resolve_provider=provider.resolver())
    audit = capture_audit(runtime)
    agent = CascadeAgent(models=[MINI, BIG], quality_config=QualityConfig(threshold=0.3), runtime=runtime,
                         cache_config=cache)
    await agent.run(QUESTION)
    with harness.run(mode="enforce", compliance=ONLY_BIG), pytest.raises(PolicyViolation):
        await agent.run(QUESTION)
    assert len(provider.requests) == 1
    assert audit.dicts()[-1]["action"] == "stop" and "cache" not in audit.dicts()[-1]
    assert agent.get_analytics().cache_hits == 0


async def test_without_a_cache_the_policy_runs_once_per_attempt_as_before():
    provider = ScriptedProvider(default=ANSWER)
    flow = CascadeFlow(runtime=Runtime(resolve_provider=provider.resolver()))
    with harness.run(mode="enforce", compliance=REDACT_EMAIL) as session:
        await flow.acomplete(MINI, "alice@example.com cannot check out: why?")
    assert [r.action for r in session.trace()].count("redact") == 1


def test_the_sync_twin_is_refused_the_same_way():
    flow, provider, _ = flow_with(fresh_cache())
    flow.complete(MINI, QUESTION)
    with cascadeflow.run(mode="enforce", compliance=ONLY_BIG), pytest.raises(PolicyViolation):
        flow.complete(MINI, QUESTION)
    assert len(provider.requests) == 1
