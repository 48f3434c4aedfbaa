"""Engine overhead per CascadeAgent.run(), excluding provider time, for a 300-token draft accepted at tier 0.

Usage: .venv/bin/python benchmarks/decision_overhead.py [--runs 3000] [--clock cpu|wall]

The provider is ScriptedProvider with zero delay; the time spent inside the provider's complete() is
measured on every call and subtracted, so what remains is routing, the runtime pipeline (cap, pricing,
reservation bookkeeping, trace), validation (assess) and result/analytics bookkeeping. All timings come
from one process and one run, so the component rows can be compared with each other. The default clock is
this thread's CPU time (the engine runs on one thread), which other processes on a busy machine do not
inflate the way they inflate wall time; `--clock wall` measures wall time instead.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from cascadeflow.cascade.agent import CascadeAgent
from cascadeflow.cascade.quality import QualityConfig, assess
from cascadeflow.messages import Response, Usage, build_request
from cascadeflow.models import ModelConfig
from cascadeflow.runtime.pipeline import Runtime
from cascadeflow.testing import ScriptedProvider

sys.path.insert(0, str(Path(__file__).resolve().parent))
from validation_overhead import QUESTION as RICH_QUESTION  # the benchmarks folder is not a package
from validation_overhead import draft_response as rich_draft

CLOCK = time.thread_time_ns  # set from --clock in __main__

QUERY = "How does TCP congestion control react to packet loss, and why does slow start matter?"
_SENTENCES = (
    "TCP congestion control reacts to packet loss by shrinking the congestion window.",
    "After three duplicate acknowledgements the sender retransmits the lost segment at once and halves the window.",
    "A retransmission timeout is a stronger loss signal, so the window drops to one segment and slow start begins.",
    "Slow start matters because it doubles the window every round trip until it reaches the threshold.",
    "Above the threshold the sender grows the window by one segment per round trip, which is additive increase.",
    "Together these rules probe for bandwidth while backing off quickly when the network signals congestion.",
)


def draft_text(words: int = 300) -> str:
    """A realistic, non-repetitive on-topic answer: the fixed explanation, then worked examples."""
    out = " ".join(_SENTENCES).split()
    i = 0
    while len(out) < words:
        w = 8 + 3 * i
        out.extend(f"Example {i + 1}: with a window of {w} segments and a threshold of {w + 5}, one loss "
                   f"detected by duplicate acknowledgements leaves {w // 2} segments in flight.".split())
        i += 1
    return " ".join(out[:words]).rstrip(".,:") + "."


class TimedProvider(ScriptedProvider):
    """ScriptedProvider that records the time spent inside complete(), to subtract it."""

    def __init__(self, reply: Response):
        super().__init__((), default=reply)
        self.spent_ns = 0

    async def complete(self, request):  # type: ignore[no-untyped-def]
        started = CLOCK()
        try:
            return await super().complete(request)
        finally:
            self.spent_ns += CLOCK() - started


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def one_run(agent: CascadeAgent, provider: TimedProvider, query: str = QUERY) -> float:
    provider.spent_ns = 0
    started = CLOCK()
    result = await agent.run(query)
    elapsed = CLOCK() - started
    assert result.draft_accepted, result.tiers[0].reason
    return (elapsed - provider.spent_ns) / 1000


async def one_attempt(runtime: Runtime, cfg: ModelConfig, provider: TimedProvider) -> float:
    request = build_request(QUERY)
    provider.spent_ns = 0
    started = CLOCK()
    call = runtime.new_call()
    response, _ = await runtime.attempt(cfg, request, call, tier=0, role="draft")
    runtime.finish(call, action="accept", model_selected=cfg.id, response=response)
    return (CLOCK() - started - provider.spent_ns) / 1000


def one_assess(reply: Response, config: QualityConfig) -> float:
    request = build_request(QUERY)
    started = CLOCK()
    assess(request, reply, config)
    return (CLOCK() - started) / 1000


async def main(runs: int) -> None:
    text = draft_text()
    reply = Response(content=text, model="", provider="bench", usage=Usage(input_tokens=40, output_tokens=300))
    provider = TimedProvider(reply)
    runtime = Runtime(resolve_provider=provider.resolver())
    tiers = [ModelConfig("llama-3.1-8b-instant", provider="groq"), ModelConfig("gpt-4o", provider="openai")]
    quiet = CascadeAgent(models=tiers, runtime=runtime)
    listened = CascadeAgent(models=tiers, runtime=runtime)
    listened.on_event(lambda event: None)
    # built-in signals switched off, one constant custom signal: isolates the engine from validation cost
    engine_only = CascadeAgent(models=tiers, runtime=runtime, quality_config=QualityConfig(
        signals=("format",), validators=[lambda request, response: 1.0]))
    # a draft that every built-in signal has something to say about: logprobs, arithmetic, a Python snippet
    rich_provider = TimedProvider(rich_draft())
    rich = CascadeAgent(models=tiers, runtime=Runtime(resolve_provider=rich_provider.resolver()))
    warm = max(200, runs // 10)
    config = QualityConfig()
    measures = {
        "CascadeAgent.run(), accepted draft (no listeners)": lambda: one_run(quiet, provider),
        "CascadeAgent.run(), accepted draft (one event listener)": lambda: one_run(listened, provider),
        "CascadeAgent.run(), validation replaced by a constant signal": lambda: one_run(engine_only, provider),
        "  of which: Runtime.attempt + finish (pipeline only)": lambda: one_attempt(runtime, tiers[0], provider),
    }
    samples: dict[str, list[float]] = {label: [] for label in measures}
    samples["assess() alone on the 300-token draft (default QualityConfig)"] = []
    # interleaved, one of each per round, so machine load affects every row alike
    for round_no in range(warm + runs):
        for label, measure in measures.items():
            took = await measure()
            if round_no >= warm:
                samples[label].append(took)
        took = one_assess(reply, config)
        if round_no >= warm:
            samples["assess() alone on the 300-token draft (default QualityConfig)"].append(took)
    # Measured in its own block after the others, so it does not change their cache conditions (and the rows
    # above stay comparable with earlier runs of this script).
    rich_label = "CascadeAgent.run(), 300-token incident draft with logprobs, arithmetic and code (all signals)"
    samples[rich_label] = []
    for round_no in range(warm + runs):
        took = await one_run(rich, rich_provider, RICH_QUESTION)
        if round_no >= warm:
            samples[rich_label].append(took)
    rows = list(samples.items())
    clock = "thread CPU time" if CLOCK is time.thread_time_ns else "wall time"
    print(f"python {platform.python_version()} on {platform.machine()}, {runs} runs each (interleaved) "
          f"after {warm} warm-up rounds; clock: {clock}; load average {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} CPUs")
    print(f"draft: {len(text.split())} words, usage 40 in / 300 out tokens; signals: "
          f"{', '.join(assess(build_request(QUERY), reply).used)}")
    print()
    print("| measurement | p50 µs | p99 µs | mean µs |")
    print("| --- | ---: | ---: | ---: |")
    for label, values in rows:
        print(f"| {label} | {pct(values, 0.5):.1f} | {pct(values, 0.99):.1f} | {statistics.fmean(values):.1f} |")
    p50 = pct(rows[0][1], 0.5)
    print()
    print(f"target p50 <= 200 µs incl. validation: {'met' if p50 <= 200 else 'NOT met'} ({p50:.1f} µs); "
          f"engine without validation p50 {pct(rows[2][1], 0.5):.1f} µs")
    rich50 = pct(samples[rich_label], 0.5)
    print(f"the same target on the all-signals draft: {'met' if rich50 <= 200 else 'NOT met'} ({rich50:.1f} µs)")
    for check in QualityConfig()._checks:
        name = getattr(check, "func", check).__module__.rsplit(".", 1)[-1]
        took = []
        request = build_request(QUERY)
        for _ in range(200):
            started = CLOCK()
            check(request, reply)
            took.append((CLOCK() - started) / 1000)
        print(f"  signal {name}: p50 {pct(took, 0.5):.1f} µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="cpu: this thread's CPU time (default); wall: perf_counter")
    args = parser.parse_args()
    CLOCK = time.thread_time_ns if args.clock == "cpu" else time.perf_counter_ns
    sys.exit(asyncio.run(main(args.runs)))
