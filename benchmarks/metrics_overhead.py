"""Per-call cost of MetricsCollector: a CascadeAgent call on a scripted provider with and without it.

Usage: .venv/bin/python benchmarks/metrics_overhead.py [--calls 500] [--rounds 7]

Runs are interleaved (without, with, without, ...) and the medians compared; the provider answers at
once, so the figure is the collector's share of cascadeflow's own work, the worst case for the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

from cascadeflow.cascade.agent import CascadeAgent
from cascadeflow.metrics import MetricsCollector
from cascadeflow.models import ModelConfig
from cascadeflow.runtime.pipeline import Runtime
from cascadeflow.testing import ScriptedProvider

CHEAP = ModelConfig("llama-3.1-8b-instant", provider="groq")
TOP = ModelConfig("gpt-4o", provider="openai")
ANSWER = ("TCP congestion control reacts to packet loss by shrinking the congestion window: on a timeout the "
          "window drops to one segment and slow start begins again.")


async def per_call_us(collector: MetricsCollector | None, calls: int) -> float:
    provider = ScriptedProvider({CHEAP.name: [ANSWER] * calls})
    agent = CascadeAgent(models=[CHEAP, TOP], runtime=Runtime(resolve_provider=provider.resolver()),
                         metrics_collector=collector)
    started = time.perf_counter()
    for i in range(calls):
        await agent.run(f"How does TCP react to loss? ({i})")
    return (time.perf_counter() - started) / calls * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    collector = MetricsCollector()
    asyncio.run(per_call_us(collector, 50))  # warm both paths
    without, with_ = [], []
    for _ in range(args.rounds):
        without.append(asyncio.run(per_call_us(None, args.calls)))
        with_.append(asyncio.run(per_call_us(collector, args.calls)))
    a, b = statistics.median(without), statistics.median(with_)
    print(f"{args.rounds} interleaved rounds x {args.calls} calls: without {a:.0f} us/call, with {b:.0f} us/call, "
          f"+{b - a:.0f} us ({b / a:.3f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
