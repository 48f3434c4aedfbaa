"""Response cache: hit vs miss through the same pipeline, hit latency per backend, key sensitivity, and
whether memory, SQLite and Redis give the same answers on one trace.

1. Latency. For each backend, CascadeFlow.acomplete over the OpenAI adapter against the API double
   (benchmarks/api_double.py: a process of its own on loopback that answers at once, so a miss costs our
   pipeline, the adapter and one loopback round trip and nothing of a real provider's seconds: the ratio
   is a lower bound). Each iteration makes one miss (a new question, stored) and one hit (a stored
   question), interleaved; medians after a warm-up.
2. Key sensitivity. A base request is stored, then each variant (one answer-relevant field changed) is
   looked up through CascadeFlow: every served variant is a false hit. The same arguments with keys
   reordered must hit.
3. Same answers. One trace of 60 calls (repeats, rewordings, new questions, option changes) through each
   backend with the semantic cache on: the sequence of (served from cache?, answer) must be identical.

    .venv/bin/python benchmarks/cache_latency.py [--calls 400] [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_double import api_double

from cascadeflow import CacheConfig, CascadeFlow, ModelConfig
from cascadeflow.cache import ResponseCache
from cascadeflow.providers.http import CircuitBreakers, HttpOptions
from cascadeflow.providers.openai_chat import OpenAIChat
from cascadeflow.runtime.pipeline import Runtime

# The models' base URLs are part of the cache key only: every model is served by one adapter on the double.
MODEL = ModelConfig("gpt-4o-mini", provider="openai", base_url="http://bench.invalid/v1", api_key="sk-bench")
SYSTEM = {"role": "system", "content": "You are an SRE assistant."}


def flow_for(config: CacheConfig, root: str) -> CascadeFlow:
    adapter = OpenAIChat("openai", base_url=f"{root}/v1", api_key="sk-bench",
                         http=HttpOptions(breakers=CircuitBreakers()))
    return CascadeFlow(runtime=Runtime(resolve_provider=lambda cfg: adapter), cache_config=ResponseCache(config))


def configs(redis_url: str, workdir: Path) -> dict[str, CacheConfig]:
    prefix = f"cfbench:{uuid.uuid4().hex[:8]}:"
    return {
        "memory": CacheConfig(backend="memory", key_prefix=prefix),
        "sqlite": CacheConfig(backend="sqlite", sqlite_path=str(workdir / "cache.sqlite3"), key_prefix=prefix),
        "redis": CacheConfig(backend="redis", redis_url=redis_url, key_prefix=prefix),
    }


async def latency(flows: dict[str, CascadeFlow], calls: int) -> dict[str, dict[str, float]]:
    samples: dict[str, dict[str, list[float]]] = {name: {"hit": [], "miss": []} for name in flows}
    stored = [SYSTEM, {"role": "user", "content": "P2: disk usage 95% on db-1. What now?"}]
    bare: list[float] = []
    for flow in flows.values():
        await flow.acomplete(MODEL, stored, max_tokens=200)
    for i in range(calls + 50):
        for name, flow in flows.items():  # interleaved: every backend sees the same machine state
            question = [SYSTEM, {"role": "user", "content": f"P2: disk usage {i}% on web-{i}. What now?"}]
            t0 = time.perf_counter()
            miss = await flow.acomplete(MODEL, question, max_tokens=200)
            t1 = time.perf_counter()
            hit = await flow.acomplete(MODEL, stored, max_tokens=200)
            t2 = time.perf_counter()
            assert hit.cache_hit and not miss.cache_hit
            if name == "redis":  # one bare GET round trip, to read the Redis figures against
                t3 = time.perf_counter()
                flow.cache.backend.client.get("cfbench:absent")
                bare.append((time.perf_counter() - t3) * 1e6)
            if i >= 50:
                samples[name]["miss"].append((t1 - t0) * 1e6)
                samples[name]["hit"].append((t2 - t1) * 1e6)
    out = {}
    for name, s in samples.items():
        hit, miss = statistics.median(s["hit"]), statistics.median(s["miss"])
        ratios = [m / h for m, h in zip(s["miss"], s["hit"], strict=True)]
        out[name] = {"hit_p50_us": hit, "miss_p50_us": miss, "miss_over_hit_p50": statistics.median(ratios)}
    if bare:
        out["redis"]["bare_get_p50_us"] = statistics.median(bare[50:])
    return out


VARIANTS = {
    "model": {"model": ModelConfig("gpt-4o", provider="openai", base_url=MODEL.base_url, api_key="sk-bench")},
    "base_url": {"model": ModelConfig("gpt-4o-mini", provider="openai", base_url="http://other.invalid/v1",
                                      api_key="sk-bench")},
    "system prompt": {"messages": [{"role": "system", "content": "You are a DBA."}]},
    "user text": {"messages": [SYSTEM, {"role": "user", "content": "Why is payments returning 500s?"}]},
    "user name": {"messages": [SYSTEM, {"role": "user", "content": "Why is checkout returning 500s?", "name": "b"}]},
    "role": {"messages": [{"role": "user", "content": "You are an SRE assistant."},
                          {"role": "user", "content": "Why is checkout returning 500s?"}]},
    "temperature": {"temperature": 0.3},
    "max_tokens": {"max_tokens": 201},
    "tools": {"tools": [{"name": "get_logs", "parameters": {"type": "object", "properties": {}}}]},
    "tool_choice": {"tool_choice": "none"},
    "response_format": {"response_format": {"type": "text"}},
    "seed": {"seed": 8},
    "stop": {"stop": ["STOP"]},
    "top_p": {"top_p": 0.5},
    "provider option": {"reasoning_effort": "high"},
}


async def sensitivity(flow: CascadeFlow) -> tuple[int, int, bool]:
    """(false hits, variants, reordered arguments hit)."""
    base = {"model": MODEL, "messages": [SYSTEM, {"role": "user", "content": "Why is checkout returning 500s?"}],
            "temperature": 0.2, "max_tokens": 200, "tools": [{"name": "get_metrics", "description": "metrics",
                                                              "parameters": {"type": "object", "properties": {}}}],
            "tool_choice": "auto", "response_format": {"type": "json_object"}, "seed": 7}
    await flow.acomplete(**base)
    false_hits = 0
    for change in VARIANTS.values():
        false_hits += (await flow.acomplete(**{**base, **change})).cache_hit
    reordered = {k: base[k] for k in reversed(list(base))}
    reordered["messages"] = [dict(reversed(list(m.items()))) for m in base["messages"]]
    reordered["tools"] = [dict(reversed(list(t.items()))) for t in base["tools"]]
    return false_hits, len(VARIANTS), (await flow.acomplete(**reordered)).cache_hit


async def trace(flow: CascadeFlow) -> list[tuple[bool, str]]:
    rng = random.Random(7)
    questions = [f"{w.format(s=s)} on {h}?" for s in ("checkout", "search", "auth") for h in ("db-1", "web-2")
                 for w in ("Why is {s} slow", "What makes {s} slow")]  # the second wording: semantic hits
    out = []
    for _ in range(60):
        q = rng.choice(questions)
        result = await flow.acomplete(MODEL, [SYSTEM, {"role": "user", "content": q}],
                                      temperature=rng.choice([0, 0.5]))
        out.append((result.cache_hit, result.content))
    return out


async def main(calls: int, redis_url: str, root: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        lat_flows = {name: flow_for(c, root) for name, c in configs(redis_url, Path(tmp) / "latency").items()}
        rows = await latency(lat_flows, calls)
        sens = await sensitivity(flow_for(configs(redis_url, Path(tmp) / "sens")["memory"], root))
        traces = {name: await trace(flow_for(replace(c, semantic=True), root))
                  for name, c in configs(redis_url, Path(tmp) / "trace").items()}
        for flow in lat_flows.values():
            flow.cache.clear()
    print(f"{'backend':<8} {'hit p50 µs':>11} {'miss p50 µs':>12} {'miss/hit (median of pairs)':>28}")
    for name, r in rows.items():
        print(f"{name:<8} {r['hit_p50_us']:>11.0f} {r['miss_p50_us']:>12.0f} {r['miss_over_hit_p50']:>28.1f}")
    if "bare_get_p50_us" in rows.get("redis", {}):
        print(f"bare Redis GET round trip p50, same loop: {rows['redis']['bare_get_p50_us']:.0f} µs")
    print(f"key sensitivity: {sens[0]} false hits over {sens[1]} changed fields; reordered arguments hit: {sens[2]}")
    same = traces["memory"] == traces["sqlite"] == traces["redis"]
    hits = sum(h for h, _ in traces["memory"])
    print(f"same trace on memory/SQLite/Redis (semantic on): {'identical' if same else 'DIFFERENT'} "
          f"({len(traces['memory'])} calls, {hits} hits)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    with api_double() as double_root:
        asyncio.run(main(args.calls, args.redis, double_root))
