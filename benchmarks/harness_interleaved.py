"""Harness overhead with the configurations interleaved in short blocks, so machine noise hits every row alike.

harness_overhead.py times each configuration in blocks of 400 calls over 10 rounds. On a machine whose
neighbours come and go, one noisy block moves that row's figure by tens of µs. Here each of 200 rounds makes
a block of 25 calls in each configuration, in a random order, so a noisy stretch costs every row about the
same. The call and the client are harness_overhead.py's: openai `chat.completions.create` against an
in-process httpx MockTransport.

The price of the shorter blocks is colder caches. Switching configuration every 25 calls leaves the harness's
code and data colder than 400 calls in a row do, so the added figures come out somewhat higher here. Switching
after every call (`--block 1`) makes them higher still. Neither is "the" overhead: it depends on how much
other work an application does between its calls.

Each configuration is set up once with the public API (`cascadeflow.init(...)`, and `cascadeflow.run(...)`
entered in the configuration's own contextvars.Context). Before each call the benchmark swaps in that
configuration's state: the harness's config and runtime, and the SDK's `create`. The uninstrumented row gets
the SDK's own `create` back, so no dormant wrapper flatters the baseline. The swap happens outside the timed
region, and every row pays the same for it.

"added" is the row's CPU p50 minus the uninstrumented CPU p50 over the same rounds (CPU time of the calling
thread, less sensitive than wall time to other processes). The 95% interval comes from resampling
calls: the same positions drawn in this row and in the uninstrumented one.

    .venv/bin/python benchmarks/harness_interleaved.py [--rounds 200] [--block 25] [--order N]
"""

from __future__ import annotations

import argparse
import contextvars
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
from openai.resources.chat.completions import completions as chat_completions

sys.path.insert(0, str(Path(__file__).parent))
import harness_overhead as bench  # the same body, messages and client

from cascadeflow import harness
from cascadeflow.harness import state

ROWS = {  # name -> (mode, audit?, inside a budgeted run scope?)
    "uninstrumented": ("off", False, False),
    "instrumented, no run scope, no sink": ("observe", False, False),
    "instrumented, no run scope + JSONL audit": ("observe", True, False),
    "instrumented, run scope, no sink": ("observe", False, True),
    "instrumented, run scope + JSONL audit": ("observe", True, True),
    "enforce run: policy + ledger + audit": ("enforce", True, True),
}
TARGETS = {"instrumented, no run scope, no sink": 50.0, "instrumented, no run scope + JSONL audit": 100.0}


def setups(audit_dir: Path, oa: openai.OpenAI, sinks: list[Any]) -> dict[str, Callable[[], None]]:
    """name -> a function that puts that configuration in place and returns its Context (outside the timing);
    the configurations' audit sinks are added to `sinks`."""
    # the class itself: `oa.chat.completions` made here, before init(), could not be traced to its client
    resource = chat_completions.Completions
    sdk_create = resource.__dict__["create"]
    swaps: dict[str, Callable[[], None]] = {}
    for index, (name, (mode, audit, scoped)) in enumerate(ROWS.items()):
        harness.reset()
        if mode == "off":
            create, config, runtime = sdk_create, state.current_config(), state.default_runtime()
        else:
            harness.init(mode=mode, audit=str(audit_dir / f"audit-{index}.jsonl") if audit else False)
            create, config, runtime = resource.__dict__["create"], state.current_config(), state.default_runtime()
            sinks.extend(runtime.sinks)
        context = contextvars.copy_context()
        if scoped:
            context.run(harness.run(budget=1000.0).__enter__)  # a long-lived run, as in a real agent

        def swap(create: Any = create, config: Any = config, runtime: Any = runtime,
                 context: contextvars.Context = context) -> contextvars.Context:
            resource.create = create  # the instrumented wrapper, or the SDK's own method
            state._config, state._runtime = config, runtime  # the benchmark's switch (internals)
            return context

        swaps[name] = swap  # type: ignore[assignment]
    # Each reset() above closed the previous configuration's sinks; a JsonlSink reopens on its next write, so
    # the swapped-in runtimes keep writing. main() closes them all at the end.
    return swaps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200, help="rounds; each makes a block of calls per configuration")
    parser.add_argument("--block", type=int, default=25, help="timed calls per configuration and round")
    parser.add_argument("--order", type=int, default=None, help="fixes the random per-round order (repeatable runs)")
    args = parser.parse_args()
    rng = random.Random(args.order)
    oa = bench.client()

    def timed() -> float:
        c0 = time.thread_time_ns()
        oa.chat.completions.create(model="gpt-4o-mini", messages=bench.MESSAGES, max_tokens=16)
        return (time.thread_time_ns() - c0) / 1000

    with tempfile.TemporaryDirectory() as tmp:
        sinks: list[Any] = []
        swaps = setups(Path(tmp), oa, sinks)
        names = list(swaps)
        for _ in range(100):  # warm-up: imports, price lookups, specialisation
            for name in names:
                swaps[name]().run(timed)  # type: ignore[attr-defined]
        cpu: dict[str, list[float]] = {name: [] for name in names}
        order = names[:]
        for _ in range(args.rounds):
            rng.shuffle(order)
            for name in order:
                context = swaps[name]()
                context.run(timed)  # untimed: the first call after the swap re-learns the SDK's attribute caches
                cpu[name].extend(context.run(timed) for _ in range(args.block))  # type: ignore[attr-defined]
        harness.reset()
        for sink in sinks:
            sink.close()
        lines = sum(sum(1 for _ in path.open()) for path in Path(tmp).glob("audit-*.jsonl"))

    base = cpu["uninstrumented"]
    print(f"openai {openai.__version__}, httpx MockTransport, {args.rounds} rounds x {len(names)} configurations x "
          f"{args.block} calls, blocks in a random order per round; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} "
          f"CPUs; audit lines written: {lines}")
    print("added = this row's CPU p50 - the uninstrumented CPU p50 (calling thread); 95% interval by resampling "
          "calls; a target counts as met only when the whole interval is under it")
    print(f"{'configuration':42} {'cpu p50':>8} {'cpu p99':>8} {'added p50':>10} {'95% interval':>16}  target")
    for name in names:
        values = cpu[name]
        added = statistics.median(values) - statistics.median(base)
        boots = []
        for _ in range(200):
            picks = [rng.randrange(len(values)) for _ in range(len(values))]
            boots.append(statistics.median(values[i] for i in picks) - statistics.median(base[i] for i in picks))
        boots.sort()
        target = TARGETS.get(name)
        verdict = "" if target is None else f"<= {target:.0f}: {'met' if boots[194] <= target else 'NOT met'}"
        print(f"{name:42} {statistics.median(values):8.1f} {bench.pct(values, 0.99):8.1f} {added:10.1f} "
              f"{boots[5]:7.1f} .. {boots[194]:6.1f}  {verdict}")


if __name__ == "__main__":
    main()
