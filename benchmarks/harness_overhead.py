"""Overhead of the harness on an official SDK call: the same openai chat.completions.create call against an
in-process httpx MockTransport, uninstrumented vs instrumented in observe mode (a bare `init()`, no run scope;
then inside a budgeted `run()` scope), each without a sink and with a JSONL audit write, and in enforce mode
inside a budgeted run (policy + ledger reservation + audit). Interleaved blocks, one run. One extra row
writes the no-scope audit through an opt-in background writer (`JsonlSink(..., background=True)`): the
calling thread only queues the record, so its own CPU time leaves out the writer thread's work; the
"all threads" column (process CPU per call, the queue drained inside the measured block) puts it back.

    .venv/bin/python benchmarks/harness_overhead.py [--calls 4000] [--rounds 10]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import openai

from cascadeflow import harness
from cascadeflow.trace.jsonl import JsonlSink

BODY = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "pong"}}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13},
}).encode()
MESSAGES = [{"role": "user", "content": "ping"}]


def client() -> openai.OpenAI:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=BODY,
                                                                   headers={"content-type": "application/json"}))
    # OpenAI's own host, so the harness prices the call as OpenAI's; the mock transport answers, nothing is sent.
    return openai.OpenAI(api_key="sk-bench", base_url="https://api.openai.com/v1", max_retries=0,
                         http_client=httpx.Client(transport=transport))


def block(oa: openai.OpenAI, n: int) -> list[tuple[float, float]]:
    """(wall µs, this thread's CPU µs) per call; CPU time is immune to other processes on a busy machine."""
    out = []
    for _ in range(n):
        t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        oa.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=16)
        out.append(((time.perf_counter_ns() - t0) / 1000, (time.thread_time_ns() - c0) / 1000))
    return out


def pipeline_only(mode: str, audit: Path | None, n: int, between: openai.OpenAI | None = None) -> list[float]:
    """CPU µs per call of the harness alone: the same bridge, with an invoke that returns a canned Response.
    With `between`, an untimed uninstrumented SDK call runs before each timed one, so the harness runs with
    the caches in the state a real SDK call leaves them in (as it does in the instrumented rows)."""
    from cascadeflow.harness.instrument import bridge
    from cascadeflow.harness.instrument.openai import ChatCompletionsAdapter
    from cascadeflow.messages import Response, Usage

    harness.reset()
    # instrument=False leaves `between` unpatched; the timed bridge and pipeline below are the same either way
    harness.init(mode=mode, audit=str(audit) if audit else False, instrument=None if between is None else False)
    adapter, runtime = ChatCompletionsAdapter(), harness.default_runtime()
    kwargs = {"model": "gpt-4o-mini", "messages": MESSAGES, "max_tokens": 16}
    canned = Response("pong", "gpt-4o-mini", "openai", Usage(12, 1))

    async def invoke(request: object) -> Response:
        return canned

    out = []
    with harness.run(budget=1000.0):
        for _ in range(n):
            if between is not None:
                between.chat.completions.create(**kwargs)
            c0 = time.thread_time_ns()
            prepared = bridge.prepare(adapter, kwargs, mode)
            response, record = bridge.drive_sync(runtime.attempt(prepared.model, prepared.view, prepared.call,
                                                                 invoke=invoke))
            bridge.finish(prepared, response, record)
            out.append((time.thread_time_ns() - c0) / 1000)
    return out


BACKGROUND = "no run scope + audit, background writer"
NO_SCOPE = ("instrumented, no run scope, no sink", "instrumented, no run scope + JSONL audit", BACKGROUND)


def configure(name: str, audit: Path) -> None:
    harness.reset()
    if name == NO_SCOPE[0]:
        harness.init(mode="observe", audit=False)
    elif name == NO_SCOPE[1]:
        harness.init(mode="observe", audit=str(audit))
    elif name == BACKGROUND:
        harness.init(mode="observe", audit=JsonlSink(audit, background=True))
    elif name == "instrumented, no sink":
        harness.init(mode="observe", audit=False)
    elif name == "instrumented + JSONL audit":
        harness.init(mode="observe", audit=str(audit))
    elif name == "enforce run: policy + ledger + audit":
        harness.init(mode="enforce", audit=str(audit))


def run_scope(name: str) -> contextlib.AbstractContextManager[object]:
    """The rows other than NO_SCOPE run inside a budgeted run scope (`cascadeflow.run(budget=...)`), whose
    policy checks the budget on every call; NO_SCOPE rows are a bare `init()` + SDK call."""
    return contextlib.nullcontext() if name in NO_SCOPE else harness.run(budget=1000.0)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=4000, help="calls per configuration in total")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds")
    args = parser.parse_args()
    names = ["uninstrumented", *NO_SCOPE, "instrumented, no sink", "instrumented + JSONL audit",
             "enforce run: policy + ledger + audit"]
    samples: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    # per round: (wall p50, cpu p50, all threads' CPU per call) of each configuration
    rounds: list[dict[str, tuple[float, float, float]]] = []
    per_round = max(1, args.calls // args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        audit = Path(tmp) / "audit.jsonl"
        for name in names:  # warm-up: imports, price lookups, connection setup
            configure(name, audit)
            with run_scope(name):
                block(client(), 50)
        for _ in range(args.rounds):
            medians = {}
            for name in names:
                configure(name, audit)
                oa = client()
                p0 = time.process_time_ns()
                with run_scope(name):
                    got = block(oa, per_round)
                for sink in harness.default_runtime().sinks:
                    getattr(sink, "drain", lambda: None)()  # the background writer's work counts here
                process_us = (time.process_time_ns() - p0) / 1000 / per_round
                samples[name].extend(got)
                medians[name] = (statistics.median(w for w, _ in got), statistics.median(c for _, c in got),
                                 process_us)
            rounds.append(medians)
        harness.reset()
        lines = sum(1 for _ in audit.open())
        alone = {"observe, no sink": pipeline_only("observe", None, 2000),
                 "observe + JSONL audit": pipeline_only("observe", audit, 2000),
                 "enforce run + ledger + JSONL audit": pipeline_only("enforce", audit, 2000)}
        between = {"observe, no sink": pipeline_only("observe", None, 2000, client()),
                   "observe + JSONL audit": pipeline_only("observe", audit, 2000, client()),
                   "enforce run + ledger + JSONL audit": pipeline_only("enforce", audit, 2000, client())}
        harness.reset()
    wall = {n: [w for w, _ in v] for n, v in samples.items()}
    cpu = {n: [c for _, c in v] for n, v in samples.items()}
    print(f"openai {openai.__version__}, httpx MockTransport, {per_round * args.rounds} calls per row, "
          f"{args.rounds} interleaved rounds; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
          f"audit lines written: {lines}")
    print("added = median over rounds of (this row's p50 - the uninstrumented p50 of the same round)")
    print("all threads = added process CPU per call (mean over the block, every thread, queue drained)")
    print(f"{'configuration':38} {'wall p50':>9} {'wall p99':>9} {'cpu p50':>8} {'cpu p99':>8} "
          f"{'added wall':>10} {'added cpu':>9} {'all threads':>11}   (µs)")
    for name in names:
        added_wall = statistics.median(r[name][0] - r["uninstrumented"][0] for r in rounds)
        added_cpu = statistics.median(r[name][1] - r["uninstrumented"][1] for r in rounds)
        added_all = statistics.median(r[name][2] - r["uninstrumented"][2] for r in rounds)
        print(f"{name:38} {statistics.median(wall[name]):9.1f} {pct(wall[name], 0.99):9.1f} "
              f"{statistics.median(cpu[name]):8.1f} {pct(cpu[name], 0.99):8.1f} {added_wall:10.1f} "
              f"{added_cpu:9.1f} {added_all:11.1f}")
    print("the harness alone (no SDK, no HTTP: a canned Response), CPU µs per call:")
    for name, values in alone.items():
        print(f"  {name:36} p50 {statistics.median(values):7.1f}   p99 {pct(values, 0.99):7.1f}")
    print("the same, each timed call after an untimed uninstrumented SDK call (caches as in real use), CPU µs:")
    for name, values in between.items():
        print(f"  {name:36} p50 {statistics.median(values):7.1f}   p99 {pct(values, 0.99):7.1f}")

if __name__ == "__main__":
    main()
