"""What naming an SDK call's vendor from its client's base URL costs on every instrumented call.

Three rows, interleaved in rounds so machine noise hits them alike: the per-call lookup the instrumentation
makes (`vendor_of`: one weak-dictionary hit per client), the same lookup resolved from scratch (`vendor_for`:
the environment's base-URL variables and the client's URL read on every call, what caching avoids), and an
empty call as the floor. Figures are medians over rounds of the per-call CPU time, in µs, minus the floor.

    .venv/bin/python benchmarks/sdk_vendor_lookup.py [--rounds 30] [--calls 20000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import openai

from cascadeflow.harness.instrument.vendor import vendor_for, vendor_of


def per_call_us(fn, calls: int) -> float:
    start = time.thread_time_ns()
    for _ in range(calls):
        fn()
    return (time.thread_time_ns() - start) / calls / 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    client = openai.OpenAI(base_url="https://api.groq.com/openai/v1", api_key="gsk-bench")
    resource = client.chat.completions
    rows = {
        "floor (empty call)": lambda: None,
        "vendor_of (per client, cached)": lambda: vendor_of("openai", resource),
        "vendor_for (env + URL every call)": lambda: vendor_for("openai", str(client.base_url)),
    }
    assert vendor_of("openai", resource).provider == "groq"
    samples: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(args.rounds):
        order = list(rows)
        random.shuffle(order)
        for name in order:
            samples[name].append(per_call_us(rows[name], args.calls))
    floor = statistics.median(samples["floor (empty call)"])
    print(f"| row | µs per call above the floor (median of {args.rounds} rounds × {args.calls} calls) |")
    print("| --- | ---: |")
    for name, values in samples.items():
        if name != "floor (empty call)":
            print(f"| {name} | {statistics.median(values) - floor:.2f} |")


if __name__ == "__main__":
    main()
