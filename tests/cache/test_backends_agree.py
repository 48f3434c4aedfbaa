"""Memory, SQLite and Redis serve the same answers on the same trace (exact and semantic lookups)."""

from __future__ import annotations

import random

from services import REDIS_URL, require_redis

from cascadeflow import CacheConfig, CascadeFlow, ModelConfig
from cascadeflow.cache import ResponseCache
from cascadeflow.runtime.pipeline import Runtime
from cascadeflow.testing import ScriptedProvider

MODEL = ModelConfig(name="big", provider="openai", input_price_per_million=10, output_price_per_million=40)


def run_trace(config: CacheConfig) -> list[tuple[bool, str]]:
    count = iter(range(10_000))
    provider = ScriptedProvider(default=lambda request: f"answer {next(count)} to {request.messages[-1].text}")
    cache = ResponseCache(config)
    flow = CascadeFlow(runtime=Runtime(resolve_provider=provider.resolver()), cache_config=cache)
    rng = random.Random(3)
    wordings = ("Why is {s} slow on {h}?", "What makes {s} slow on {h}?", "Is {s} not slow on {h}?")
    out = []
    for _ in range(40):
        text = rng.choice(wordings).format(s=rng.choice(["checkout", "auth"]), h=rng.choice(["db-1", "db-2"]))
        result = flow.complete(MODEL, text, temperature=rng.choice([0, 1]))
        out.append((result.cache_hit, result.content))
    cache.clear()
    cache.close()
    return out


def test_memory_sqlite_and_redis_serve_the_same_answers(tmp_path, redis_prefix):
    require_redis()
    base = {"semantic": True, "key_prefix": redis_prefix}
    traces = [run_trace(CacheConfig(backend="memory", **base)),
              run_trace(CacheConfig(backend="sqlite", sqlite_path=str(tmp_path / "c.sqlite3"), **base)),
              run_trace(CacheConfig(backend="redis", redis_url=REDIS_URL, **base))]
    assert traces[0] == traces[1] == traces[2]
    hits = sum(hit for hit, _ in traces[0])
    assert 0 < hits < len(traces[0])
