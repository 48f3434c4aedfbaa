"""Adapter overhead: our code's time per non-streaming call, net of the bare aiohttp call to the same host.

Each iteration makes one bare call (an `aiohttp.ClientSession` POST of the same body to the API double, then
the JSON parsed: what the adapters send through) and one adapter call, interleaved so both see the same
machine state. Overhead = adapter time - bare time, per pair: building the body, breaker, admission,
retries, timeouts, the attempt record and the parse into a `Response`. The double (benchmarks/api_double.py)
runs in a process of its own on loopback.

    .venv/bin/python benchmarks/adapter_overhead.py [--calls 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_double import api_double

from cascadeflow.messages import build_request
from cascadeflow.providers.anthropic import AnthropicMessages
from cascadeflow.providers.http import CircuitBreakers, HttpOptions
from cascadeflow.providers.openai_chat import OpenAIChat


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(name: str, adapter, url: str, headers: dict[str, str], request, calls: int) -> dict:
    body = json.dumps({"model": request.model, "messages": [m.to_dict() for m in request.messages],
                       "max_tokens": 200}).encode()
    bare, ours, diff = [], [], []
    async with aiohttp.ClientSession() as session:
        for i in range(calls + 200):
            t0 = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as reply:
                json.loads(await reply.read())
            t1 = time.perf_counter()
            await adapter.complete(request)
            t2 = time.perf_counter()
            if i >= 200:  # warm-up excluded
                bare.append((t1 - t0) * 1e6)
                ours.append((t2 - t1) * 1e6)
                diff.append((t2 - t1 - (t1 - t0)) * 1e6)
    return {"adapter": name, "calls": calls,
            "bare_p50": statistics.median(bare), "bare_p99": percentile(bare, 0.99),
            "adapter_p50": statistics.median(ours), "adapter_p99": percentile(ours, 0.99),
            "overhead_p50": statistics.median(diff), "overhead_p99": percentile(diff, 0.99)}


async def main(calls: int, root: str) -> None:
    request = build_request([{"role": "system", "content": "You are an SRE assistant."},
                             {"role": "user", "content": "P2: disk usage 95% on db-1. What now?"}],
                            model="gpt-4o-mini", max_tokens=200)
    openai = OpenAIChat("openai", base_url=f"{root}/v1", api_key="sk-bench",
                        http=HttpOptions(breakers=CircuitBreakers()))
    anthropic = AnthropicMessages(base_url=root, api_key="sk-bench", http=HttpOptions(breakers=CircuitBreakers()))
    json_headers = {"content-type": "application/json", "accept": "application/json"}
    rows = [
        await measure("OpenAIChat", openai, f"{root}/v1/chat/completions",
                      {**json_headers, "authorization": "Bearer sk-bench"}, request, calls),
        await measure("AnthropicMessages", anthropic, f"{root}/v1/messages",
                      {**json_headers, "x-api-key": "sk-bench", "anthropic-version": "2023-06-01"},
                      request.with_(model="claude-3-5-haiku-20241022"), calls),
    ]
    print(f"{'adapter':<18} {'calls':>6} {'bare p50':>9} {'bare p99':>9} {'ours p50':>9} {'ours p99':>9} "
          f"{'overhead p50':>13} {'overhead p99':>13}   (microseconds)")
    for r in rows:
        print(f"{r['adapter']:<18} {r['calls']:>6} {r['bare_p50']:>9.1f} {r['bare_p99']:>9.1f} "
              f"{r['adapter_p50']:>9.1f} {r['adapter_p99']:>9.1f} {r['overhead_p50']:>13.1f} {r['overhead_p99']:>13.1f}")
    print(f"load average (1 min) during the run: {os.getloadavg()[0]:.2f} on {os.cpu_count() or 0} CPUs; "
          "p99 values include other processes' noise")
    worst = max(r["overhead_p50"] for r in rows)
    print(f"target: overhead p50 <= 100 us -> {'met' if worst <= 100 else 'NOT met'} (worst p50 {worst:.1f} us)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    calls = parser.parse_args().calls
    with api_double() as double_root:
        asyncio.run(main(calls, double_root))
