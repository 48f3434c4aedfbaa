"""Overhead of the harness on an official SDK call: the same openai chat.completions.create call against an
in-process httpx MockTransport, uninstrumented vs instrumented (observe, no sink), with a JSONL audit write,
and in enforce mode inside a budgeted run (policy + ledger reservation + audit). Interleaved blocks, one run.

    .venv/bin/python benchmarks/harness_overhead.py [--calls 3000] [--rounds 6]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import openai

from cascadeflow import harness

BODY = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "pong"}}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13},
}).encode()
MESSAGES = [{"role": "user", "content": "ping"}]


def client() -> openai.OpenAI:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=BODY,
                                                                   headers={"content-type": "application/json"}))
    return openai.OpenAI(api_key="sk-bench", base_url="http://bench.invalid/v1", max_retries=0,
                         http_client=httpx.Client(transport=transport))


def block(oa: openai.OpenAI, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        oa.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=16)
        out.append((time.perf_counter_ns() - t0) / 1000)
    return out


def configure(name: str, audit: Path) -> None:
    harness.reset()
    if name == "instrumented, no sink":
        harness.init(mode="observe", audit=False)
    elif name == "instrumented + JSONL audit":
        harness.init(mode="observe", audit=str(audit))
    elif name == "enforce run: policy + ledger + audit":
        harness.init(mode="enforce", audit=str(audit))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=3000, help="calls per configuration in total")
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds")
    args = parser.parse_args()
    names = ["uninstrumented", "instrumented, no sink", "instrumented + JSONL audit",
             "enforce run: policy + ledger + audit"]
    samples: dict[str, list[float]] = {n: [] for n in names}
    per_round = max(1, args.calls // args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        audit = Path(tmp) / "audit.jsonl"
        for name in names:  # warm-up: imports, price lookups, connection setup
            configure(name, audit)
            with harness.run(budget=1000.0):
                block(client(), 50)
        for _ in range(args.rounds):
            for name in names:
                configure(name, audit)
                oa = client()
                with harness.run(budget=1000.0):
                    samples[name].extend(block(oa, per_round))
        harness.reset()
        lines = sum(1 for _ in audit.open())
    base = statistics.median(samples["uninstrumented"])
    print(f"openai {openai.__version__}, httpx MockTransport, {per_round * args.rounds} calls per row, "
          f"{args.rounds} interleaved rounds; audit lines written: {lines}")
    print(f"{'configuration':40} {'p50 µs':>9} {'p99 µs':>9} {'added p50 µs':>13}")
    for name in names:
        p50, p99 = statistics.median(samples[name]), pct(samples[name], 0.99)
        print(f"{name:40} {p50:9.1f} {p99:9.1f} {p50 - base:13.1f}")


if __name__ == "__main__":
    main()
