"""The cache as a pipeline step of CascadeAgent and CascadeFlow: a hit costs $0, reserves nothing, is
audited as a cache hit with what it saved; misses store the final answer; the rules about what is stored
and who is served (errors, tool calls, observe mode, scoping, TTL)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

import cascadeflow
from cascadeflow import CacheConfig, CascadeAgent, CascadeFlow, ModelConfig, QualityConfig
from cascadeflow.budget import BudgetConfig, charges_for, open_ledger
from cascadeflow.cache import ResponseCache
from cascadeflow.cache.backends.memory import MemoryCacheBackend
from cascadeflow.cascade import events as ev
from cascadeflow.errors import ConfigurationError, ServerError
from cascadeflow.messages import Response, ToolCall, Usage
from cascadeflow.runtime.pipeline import Runtime
from cascadeflow.testing import ScriptedProvider, capture_audit

DRAFTER = ModelConfig(name="mini", provider="openai", input_price_per_million=1, output_price_per_million=2)
VERIFIER = ModelConfig(name="big", provider="openai", input_price_per_million=10, output_price_per_million=40)
GOOD = ("Exhausted Redis connection pools after a deploy usually mean the new release opens more connections "
        "per worker than before; compare pool size times workers against maxclients and roll back if needed.")
QUERY = "why is the redis pool exhausted after a deploy?"


def fresh_cache(**options) -> ResponseCache:
    config = CacheConfig(key_prefix=f"t{uuid.uuid4().hex}:", **options)
    return ResponseCache(config, backend=MemoryCacheBackend())


def agent_with(script, cache, **kw):
    provider = ScriptedProvider({k: list(v) for k, v in script.items()})
    runtime = Runtime(resolve_provider=provider.resolver(), ledger=kw.pop("ledger", None))
    audit = capture_audit(runtime)
    agent = CascadeAgent(models=[DRAFTER, VERIFIER], quality_config=QualityConfig(threshold=0.5),
                         runtime=runtime, cache_config=cache, **kw)
    return agent, provider, audit


async def test_a_repeated_query_is_served_from_the_cache_at_zero_cost_and_audited_as_a_hit():
    cache = fresh_cache()
    agent, provider, audit = agent_with({"mini": [GOOD]}, cache)
    first = await agent.run(QUERY, max_tokens=100)
    second = await agent.run(QUERY, max_tokens=100)
    assert len(provider.requests) == 1
    assert first.total_cost > 0 and not first.cache_hit
    assert second.cache_hit and second.total_cost == 0 and second.content == first.content
    assert second.model_used == first.model_used and second.accepted_tier == 0
    assert second.savings == first.total_cost
    hit = audit.dicts()[1]
    assert hit["action"] == "cache_hit" and hit["cost_usd"] == 0 and hit["tiers"] == []
    assert hit["cache"] == {"hit": True, "kind": "exact", "saved_usd": float(first.total_cost), "tier": 0,
                            "model": first.model_used, "similarity": None}
    assert audit.dicts()[0]["action"] == "accept" and audit.dicts()[0]["cache"] == {"hit": False}


async def test_a_cascade_stores_the_accepted_tier_and_its_total_cost():
    cache = fresh_cache()
    agent, provider, _ = agent_with({"mini": [""], "big": [GOOD]}, cache)
    first = await agent.run(QUERY)
    second = await agent.run(QUERY)
    assert first.model_used == VERIFIER.id and len(provider.requests) == 2
    assert second.cache_hit and second.model_used == VERIFIER.id and second.accepted_tier == 1
    assert second.baseline_cost == first.total_cost  # both attempts of the first call: what the hit saved


async def test_a_hit_reserves_nothing_on_the_budget_ledger():
    cache = fresh_cache()
    budget = BudgetConfig(daily_limit=1.0)
    ledger = open_ledger("memory://")
    agent, _, _ = agent_with({"mini": [GOOD]}, cache, ledger=ledger, budget_config=budget)
    reservations = []
    reserve = ledger.reserve
    ledger.reserve = lambda *a, **k: reservations.append(a[0]) or reserve(*a, **k)  # type: ignore[method-assign]
    await agent.run(QUERY)
    spent = ledger.state(charges_for(budget)[0].key).spent
    await agent.run(QUERY)
    assert len(reservations) == 1
    assert ledger.state(charges_for(budget)[0].key).spent == spent > 0


async def test_errors_are_never_cached():
    cache = fresh_cache()
    agent, provider, _ = agent_with({"mini": [ServerError("boom", status_code=503)] * 2,
                                     "big": [ServerError("boom", status_code=503)] * 2}, cache)
    for _ in range(2):
        with pytest.raises(cascadeflow.CascadeExhausted):
            await agent.run(QUERY)
    assert len(provider.requests) == 4
    assert cache.stats()["entries"] == 0


async def test_a_filtered_answer_is_not_stored():
    cache = fresh_cache()
    filtered = Response(content=GOOD, model="big", provider="fake", usage=Usage(10, 10),
                        finish_reason="content_filter")
    flow_provider = ScriptedProvider({"big": [filtered, filtered]})
    flow = CascadeFlow(runtime=Runtime(resolve_provider=flow_provider.resolver()), cache_config=cache)
    await flow.acomplete(VERIFIER, QUERY)
    await flow.acomplete(VERIFIER, QUERY)
    assert len(flow_provider.requests) == 2


def tool_answer() -> Response:
    call = ToolCall(id="c1", name="get_metrics", arguments='{"service": "checkout"}')
    return Response(content="", model="big", provider="fake", usage=Usage(10, 5), tool_calls=(call,),
                    finish_reason="tool_calls")


@pytest.mark.parametrize("cache_tool_calls", [False, True])
async def test_answers_with_tool_calls_are_cached_only_when_configured(cache_tool_calls):
    cache = fresh_cache(cache_tool_calls=cache_tool_calls)
    provider = ScriptedProvider({"big": [tool_answer(), tool_answer()]})
    flow = CascadeFlow(runtime=Runtime(resolve_provider=provider.resolver()), cache_config=cache)
    tools = [{"name": "get_metrics", "parameters": {"type": "object", "properties": {}}}]
    await flow.acomplete(VERIFIER, QUERY, tools=tools)
    second = await flow.acomplete(VERIFIER, QUERY, tools=tools)
    assert second.cache_hit is cache_tool_calls
    assert len(provider.requests) == (1 if cache_tool_calls else 2)
    assert second.tool_calls[0].name == "get_metrics"


async def test_observe_mode_records_a_would_be_hit_and_still_calls_the_provider():
    cache = fresh_cache()
    agent, provider, audit = agent_with({"mini": [GOOD, GOOD]}, cache)
    await agent.run(QUERY)
    with cascadeflow.run(mode="observe") as scope:
        second = await agent.run(QUERY)
    assert len(provider.requests) == 2 and not second.cache_hit and second.total_cost > 0
    record = audit.dicts()[1]
    assert record["action"] == "accept"
    assert record["cache"]["would_hit"] is True and record["cache"]["hit"] is False
    decisions = [d for d in scope.trace() if d["action"] == "cache_hit"]
    assert decisions and decisions[0]["applied"] is False
    assert cache.stats()["observed_hits"] == 1 and cache.stats()["hits"] == 0


async def test_observe_mode_set_by_init_serves_nothing_from_the_cache():
    cache = fresh_cache()
    agent, provider, _ = agent_with({"mini": [GOOD, GOOD]}, cache)
    await agent.run(QUERY)
    try:
        cascadeflow.init(mode="observe", audit=False, instrument=False)
        assert not (await agent.run(QUERY)).cache_hit
    finally:
        cascadeflow.reset()
    assert len(provider.requests) == 2 and cache.stats()["observed_hits"] == 1


async def test_scoping_by_user_keeps_users_apart_and_a_call_without_a_user_bypasses():
    cache = fresh_cache(scope_by=["user"])
    agent, provider, _ = agent_with({"mini": [GOOD] * 4}, cache)
    await agent.run(QUERY, user_id="alice")
    assert (await agent.run(QUERY, user_id="alice")).cache_hit
    assert not (await agent.run(QUERY, user_id="bob")).cache_hit
    assert not (await agent.run(QUERY)).cache_hit
    assert not (await agent.run(QUERY)).cache_hit
    assert len(provider.requests) == 4


async def test_scoping_by_a_metadata_field_keeps_tenants_apart():
    cache = fresh_cache(scope_by="tenant_id")
    agent, _provider, _ = agent_with({"mini": [GOOD] * 3}, cache)
    await agent.run(QUERY, metadata={"tenant_id": "acme"})
    assert (await agent.run(QUERY, metadata={"tenant_id": "acme"})).cache_hit
    assert not (await agent.run(QUERY, metadata={"tenant_id": "globex"})).cache_hit


async def test_an_entry_past_its_ttl_is_not_served():
    from services import FakeClock

    clock = FakeClock()
    cache = ResponseCache(CacheConfig(ttl=60), backend=MemoryCacheBackend(clock=clock))
    agent, provider, _ = agent_with({"mini": [GOOD, GOOD]}, cache)
    await agent.run(QUERY)
    clock.advance(61)
    assert not (await agent.run(QUERY)).cache_hit
    assert len(provider.requests) == 2


async def test_a_streamed_hit_streams_the_text_and_ends_with_usage():
    cache = fresh_cache()
    agent, provider, _ = agent_with({"mini": [GOOD]}, cache)
    first = await agent.run(QUERY)
    events = [e async for e in agent.stream(QUERY)]
    assert len(provider.requests) == 1
    assert "".join(e.text for e in events if e.kind == ev.TEXT) == GOOD
    final = events[-1]
    assert final.kind == ev.COMPLETED and final.data["cache_hit"] is True
    assert final.data["usage"] == first.usage and final.data["cost"] == 0
    assert final.data["result"].cache_hit


async def test_analytics_count_hits_and_savings():
    cache = fresh_cache()
    agent, _, _ = agent_with({"mini": [GOOD, GOOD], "big": [GOOD]}, cache)
    first = await agent.run(QUERY)
    for _ in range(3):
        await agent.run(QUERY)
    other = await agent.run("why is the redis pool exhausted after the last deploy of checkout?")
    snapshot = agent.get_analytics()
    assert snapshot.total_queries == 5 and snapshot.cache_hits == 3
    assert snapshot.cache_hit_rate == pytest.approx(0.6)
    # exact sums on the Decimal fields (the float fields are those sums rounded once)
    assert snapshot.cache_savings_decimal == 3 * first.total_cost_decimal
    assert snapshot.total_cost_decimal == first.total_cost_decimal + other.total_cost_decimal
    stats = cache.stats()
    assert stats["hits"] == 3 and stats["misses"] == 2 and stats["saved_usd"] == pytest.approx(float(3 * first.total_cost))


async def test_cascadeflow_single_model_calls_are_cached():
    cache = fresh_cache()
    provider = ScriptedProvider({"big": [GOOD]})
    runtime = Runtime(resolve_provider=provider.resolver())
    audit = capture_audit(runtime)
    flow = CascadeFlow(runtime=runtime, cache_config=cache)
    first = await flow.acomplete(VERIFIER, QUERY, temperature=0)
    second = await flow.acomplete(VERIFIER, QUERY, temperature=0)
    assert second.cache_hit and second.cost == Decimal(0) and second.content == first.content
    assert second.usage == first.usage and len(provider.requests) == 1
    assert [r["action"] for r in audit.dicts()] == ["allow", "cache_hit"]


async def test_cascadeflow_cascades_share_the_cache_with_the_agent_path():
    cache = fresh_cache()
    provider = ScriptedProvider({"mini": [GOOD]})
    flow = CascadeFlow(runtime=Runtime(resolve_provider=provider.resolver()), cache_config=cache)
    await flow.acomplete([DRAFTER, VERIFIER], QUERY)
    second = await flow.acomplete([DRAFTER, VERIFIER], QUERY)
    assert second.cache_hit and second.cost == 0 and len(provider.requests) == 1


async def test_a_different_request_option_misses():
    cache = fresh_cache()
    agent, provider, _ = agent_with({"mini": [GOOD] * 3}, cache)
    await agent.run(QUERY, temperature=0.2)
    assert not (await agent.run(QUERY, temperature=0.7)).cache_hit
    assert not (await agent.run(QUERY, temperature=0.2, seed=3)).cache_hit
    assert len(provider.requests) == 3


async def test_init_cache_config_is_the_default_cache_of_agents_without_one():
    provider = ScriptedProvider({"mini": [GOOD, GOOD]})
    config = CacheConfig(key_prefix=f"init{uuid.uuid4().hex}:")
    try:
        cascadeflow.init(mode="off", audit=False, instrument=False, cache_config=config)
        agent = CascadeAgent(models=[DRAFTER, VERIFIER], quality_config=QualityConfig(threshold=0.5),
                             runtime=Runtime(resolve_provider=provider.resolver()))
        await agent.run(QUERY)
        assert (await agent.run(QUERY)).cache_hit
    finally:
        cascadeflow.reset()
    assert not (await agent.run(QUERY)).cache_hit  # after reset() no default cache is left
    assert len(provider.requests) == 2


async def test_a_disabled_cache_is_no_cache():
    agent, _provider, _ = agent_with({"mini": [GOOD, GOOD]}, CacheConfig(enabled=False))
    assert agent.cache is None
    await agent.run(QUERY)
    assert not (await agent.run(QUERY)).cache_hit


@pytest.mark.parametrize("bad", [{"ttl": 0}, {"ttl": -1}, {"backend": "memcached"}, {"max_entries": 0},
                                 {"similarity": 1.5}, {"redis_url": "localhost:6379"}, {"enabled": "yes"},
                                 {"scope_by": [""]}])
def test_bad_cache_settings_are_refused_with_a_configuration_error(bad):
    with pytest.raises(ConfigurationError):
        CacheConfig(**bad)


def test_cache_config_must_be_a_cache_config():
    with pytest.raises(ConfigurationError, match="CacheConfig"):
        CascadeAgent(models=[DRAFTER], cache_config={"enabled": True})


async def test_an_unreachable_cache_backend_never_fails_the_call():
    class Broken(MemoryCacheBackend):
        def get(self, key):
            raise ConnectionError("cache down")

        def put(self, *a, **k):
            raise ConnectionError("cache down")

        def count(self, *a, **k):
            raise ConnectionError("cache down")

    cache = ResponseCache(CacheConfig(), backend=Broken())
    agent, provider, _ = agent_with({"mini": [GOOD, GOOD]}, cache)
    assert (await agent.run(QUERY)).content == GOOD
    assert (await agent.run(QUERY)).content == GOOD
    assert len(provider.requests) == 2


async def test_the_semantic_cache_serves_a_paraphrase_but_not_another_host_or_conversation():
    cache = fresh_cache(semantic=True)
    provider = ScriptedProvider({"big": [GOOD] * 4})
    runtime = Runtime(resolve_provider=provider.resolver())
    audit = capture_audit(runtime)
    flow = CascadeFlow(runtime=runtime, cache_config=cache)
    await flow.acomplete(VERIFIER, "How do I free disk space on db-1?")
    paraphrase = await flow.acomplete(VERIFIER, "How can I free up disk space on db-1?")
    assert paraphrase.cache_hit and len(provider.requests) == 1
    record = audit.dicts()[-1]
    assert record["cache"]["kind"] == "semantic" and record["cache"]["similarity"] >= cache.config.similarity
    assert not (await flow.acomplete(VERIFIER, "How do I free disk space on db-2?")).cache_hit
    other_thread = [{"role": "user", "content": "kafka-5 is down"}, {"role": "assistant", "content": "Noted."},
                    {"role": "user", "content": "How do I free disk space on db-1?"}]
    assert not (await flow.acomplete(VERIFIER, other_thread)).cache_hit
    assert not (await flow.acomplete(VERIFIER, "How do I free disk space on db-1?", temperature=1.0)).cache_hit
    assert cache.stats()["semantic_hits"] == 1


async def test_an_exact_only_cache_does_not_serve_a_paraphrase():
    cache = fresh_cache()
    provider = ScriptedProvider({"big": [GOOD] * 2})
    flow = CascadeFlow(runtime=Runtime(resolve_provider=provider.resolver()), cache_config=cache)
    await flow.acomplete(VERIFIER, "How do I free disk space on db-1?")
    assert not (await flow.acomplete(VERIFIER, "How can I free up disk space on db-1?")).cache_hit


def test_a_semantic_cache_without_the_embeddings_extra_fails_at_construction(monkeypatch):
    import sys

    from cascadeflow.embeddings import EmbeddingsUnavailable

    monkeypatch.setitem(sys.modules, "numpy", None)
    monkeypatch.delitem(sys.modules, "cascadeflow.cache.semantic", raising=False)
    with pytest.raises(EmbeddingsUnavailable, match=r"cascadeflow\[embeddings\]"):
        ResponseCache(CacheConfig(semantic=True), backend=MemoryCacheBackend())


def test_equal_configurations_share_one_cache_and_an_unhashable_embedder_gets_its_own():
    from cascadeflow.cache import open_cache

    config = CacheConfig(key_prefix=f"share{uuid.uuid4().hex}:")
    assert open_cache(config) is open_cache(CacheConfig(key_prefix=config.key_prefix))

    class ListEmbedder(list):  # unhashable, like any embedder holding a list base
        model_id, dimension = "fake", 2

        def embed(self, texts):
            import numpy as np

            return np.ones((len(texts), 2), dtype=np.float32) / np.sqrt(2)

    odd = CacheConfig(semantic=True, embedder=ListEmbedder(), key_prefix=config.key_prefix)
    assert open_cache(odd) is not open_cache(odd)
