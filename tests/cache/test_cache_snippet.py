"""The product description's caching snippet, as a user copies it: a Redis-backed CacheConfig on a two-tier
CascadeAgent over the loopback OpenAI and Anthropic hosts; the repeated query costs $0 and reaches no host."""

from __future__ import annotations

import uuid

from cache_support import require_redis

from cascadeflow import CacheConfig, CascadeAgent, ModelConfig
from cascadeflow.providers.anthropic import AnthropicMessages
from cascadeflow.providers.openai_chat import OpenAIChat
from cascadeflow.runtime.pipeline import Runtime

KEY = "sk-test-loopback"
ANSWER = "On packet loss TCP halves its congestion window, and on a timeout it restarts slow start."


def test_a_repeated_query_through_the_redis_cache_costs_nothing(openai_server, anthropic_server):
    require_redis()
    drafter = ModelConfig("gpt-4o-mini", provider="openai", base_url=openai_server.base_url, api_key=KEY)
    verifier = ModelConfig("claude-3-5-sonnet-20241022", provider="anthropic", base_url=anthropic_server.base_url,
                           api_key=KEY)
    adapters = {"openai": OpenAIChat, "anthropic": AnthropicMessages}
    runtime = Runtime(resolve_provider=lambda cfg: adapters[cfg.provider].from_config(cfg))

    # Combine caching with cascading
    cache_config = CacheConfig(
        enabled=True,
        ttl=3600,
        backend="redis",
        redis_url="redis://localhost:6379"
    )

    agent = CascadeAgent(
        models=[drafter, verifier],
        cache_config=cache_config,
        runtime=runtime,
    )
    # a question no earlier run asked, so the first call is a miss even on a long-lived Redis
    query = f"How does TCP congestion control react to packet loss? (run {uuid.uuid4().hex[:8]})"
    openai_server.enqueue(text=ANSWER, usage={"input": 30, "output": 20})
    first = agent.run_sync(query)
    second = agent.run_sync(query)
    assert first.total_cost > 0 and not first.cache_hit
    assert second.cache_hit and second.total_cost == 0 and second.content == first.content == ANSWER
    assert len(openai_server.requests) == 1 and anthropic_server.requests == []
    snapshot = agent.get_analytics()
    assert snapshot.cache_hits == 1 and snapshot.cache_savings == first.total_cost
