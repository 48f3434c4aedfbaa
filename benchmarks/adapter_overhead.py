"""Adapter overhead: our code's time per non-streaming call, net of the bare httpx + transport cost.

Each iteration makes one bare call (httpx.AsyncClient.post over an in-process MockTransport returning a canned
body, then .json()) and one adapter call over the same transport, interleaved so both see the same machine
state. Overhead = adapter time - bare time, per pair. No network is used.

    .venv/bin/python benchmarks/adapter_overhead.py [--calls 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time

import httpx

from cascadeflow.messages import build_request
from cascadeflow.providers.anthropic import AnthropicMessages
from cascadeflow.providers.http import CircuitBreakers, HttpOptions
from cascadeflow.providers.openai_chat import OpenAIChat

OPENAI_BODY = json.dumps({
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "The disk on db-1 is full; rotate logs."},
                 "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 42, "completion_tokens": 11, "total_tokens": 53,
              "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}},
}).encode()
ANTHROPIC_BODY = json.dumps({
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-3-5-haiku-20241022",
    "content": [{"type": "text", "text": "The disk on db-1 is full; rotate logs."}], "stop_reason": "end_turn",
    "stop_sequence": None, "usage": {"input_tokens": 42, "output_tokens": 11, "cache_creation_input_tokens": 0,
                                     "cache_read_input_tokens": 0},
}).encode()


def canned(body: bytes) -> httpx.MockTransport:
    headers = {"content-type": "application/json", "x-request-id": "req_1", "request-id": "req_1"}
    return httpx.MockTransport(lambda request: httpx.Response(200, content=body, headers=headers))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(name: str, adapter, transport: httpx.MockTransport, url: str, request, calls: int) -> dict:
    bare_client = httpx.AsyncClient(transport=transport)
    body = {"model": request.model, "messages": [m.to_dict() for m in request.messages], "max_tokens": 200}
    bare, ours, diff = [], [], []
    for i in range(calls + 200):
        t0 = time.perf_counter()
        (await bare_client.post(url, json=body)).json()
        t1 = time.perf_counter()
        await adapter.complete(request)
        t2 = time.perf_counter()
        if i >= 200:  # warm-up excluded
            bare.append((t1 - t0) * 1e6)
            ours.append((t2 - t1) * 1e6)
            diff.append((t2 - t1 - (t1 - t0)) * 1e6)
    await bare_client.aclose()
    return {"adapter": name, "calls": calls,
            "bare_p50": statistics.median(bare), "bare_p99": percentile(bare, 0.99),
            "adapter_p50": statistics.median(ours), "adapter_p99": percentile(ours, 0.99),
            "overhead_p50": statistics.median(diff), "overhead_p99": percentile(diff, 0.99)}


async def main(calls: int) -> None:
    request = build_request([{"role": "system", "content": "You are an SRE assistant."},
                             {"role": "user", "content": "P2: disk usage 95% on db-1. What now?"}],
                            model="gpt-4o-mini", max_tokens=200)
    oa_transport, an_transport = canned(OPENAI_BODY), canned(ANTHROPIC_BODY)
    openai = OpenAIChat("openai", base_url="http://bench.invalid/v1", api_key="sk-bench",
                        http=HttpOptions(transport=oa_transport, breakers=CircuitBreakers()))
    anthropic = AnthropicMessages(base_url="http://bench.invalid", api_key="sk-bench",
                                  http=HttpOptions(transport=an_transport, breakers=CircuitBreakers()))
    rows = [
        await measure("OpenAIChat", openai, oa_transport, "http://bench.invalid/v1/chat/completions", request, calls),
        await measure("AnthropicMessages", anthropic, an_transport, "http://bench.invalid/v1/messages",
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
    asyncio.run(main(parser.parse_args().calls))
