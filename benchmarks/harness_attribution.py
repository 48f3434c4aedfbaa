"""Where the harness's overhead goes, measured where it is paid: between real SDK calls.

harness_overhead.py shows the harness alone costs about 2.5 times more right after an SDK call than in a tight
loop (the two take the CPU caches from each other), so timing the parts in a tight loop says little about the
added figure. Here each part is replaced, in turn, by a stand-in that does none of its work (a cached request
view, a canned response, a constant cost, a no-op sink write, a cached audit line, no append, an append
without the lock; the audit record itself is still built in each) and the same openai call is timed as in
harness_overhead.py; a part's cost is the median over rounds of (the full row's CPU p50 - the row without
that part's work). The rows run in a random order in each round, in one process. Each figure is the
difference of two noisy medians, so the interquartile range over rounds is printed next to it. The
stand-ins break the records they touch (a cached line is the same line every call): this measures cost,
nothing else.

    .venv/bin/python benchmarks/harness_attribution.py [--rounds 30] [--calls 600]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import harness_overhead as bench  # the same SDK call, client and timing loop

from cascadeflow import harness
from cascadeflow.harness.instrument.openai import ChatCompletionsAdapter
from cascadeflow.messages import Response, Usage
from cascadeflow.pricing import PriceBook
from cascadeflow.runtime.pipeline import Runtime
from cascadeflow.trace.jsonl import JsonlSink
from cascadeflow.trace.redact import record_line

Patch = tuple[Any, str, Any]


def stand_ins() -> dict[str, tuple[str, str, list[Patch]]]:
    """row name -> (base row it is compared with, what the stand-in leaves out, patches)."""
    view = ChatCompletionsAdapter().to_request({"model": "gpt-4o-mini", "messages": bench.MESSAGES, "max_tokens": 16})
    canned = Response(content="pong", model="gpt-4o-mini", provider="openai", usage=Usage(12, 1))
    cost = Decimal("0.0000024")
    line: list[bytes] = []

    def cached_line(self: JsonlSink, record: Any) -> None:
        if not line:
            line.append(record_line(record).encode() + b"\n")
        self._accept(line[0])

    def encode_only(self: JsonlSink, record: Any) -> None:
        record_line(record, record_content=self.record_content).encode("utf-8")

    def unlocked(self: JsonlSink, data: bytes) -> None:
        self._ensure_process()
        os.write(self._fd, data)

    return {
        "to_request: the SDK kwargs -> Request view": (
            "plain", "to_request", [(ChatCompletionsAdapter, "to_request", lambda self, kwargs: view)]),
        "to_response: the SDK result -> Response": (
            "plain", "to_response", [(ChatCompletionsAdapter, "to_response", lambda self, result, request: canned)]),
        "PriceBook.cost": ("plain", "cost", [(PriceBook, "cost", lambda self, model, usage, latency_s=None: cost)]),
        "Runtime.finish (no sink, no run scope)": (
            "plain", "finish", [(Runtime, "finish", lambda self, call, **kwargs: None)]),
        "the sink's write: line + locked append": ("audit", "sink.write", [(JsonlSink, "write",
                                                                           lambda self, record: None)]),
        "the audit line (record_line)": ("audit", "line", [(JsonlSink, "write", cached_line)]),
        "the locked append": ("audit", "append", [(JsonlSink, "write", encode_only)]),
        "  of which the flock pair + size/rotation checks": ("audit", "lock", [(JsonlSink, "_append", unlocked)]),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--calls", type=int, default=600, help="calls per row per round")
    args = parser.parse_args()
    parts = stand_ins()
    rows: dict[str, tuple[str, list[Patch]]] = {"uninstrumented": ("off", []), "plain": ("plain", []),
                                                "audit": ("audit", [])}
    rows.update({name: (base, patches) for name, (base, _, patches) in parts.items()})
    saved: list[tuple[Any, str, Any]] = []

    def configure(name: str, audit: Path) -> None:
        while saved:
            owner, attr, value = saved.pop()
            setattr(owner, attr, value)
        harness.reset()
        base, patches = rows[name]
        if base == "plain":
            harness.init(mode="observe", audit=False)
        elif base == "audit":
            harness.init(mode="observe", audit=str(audit))
        for owner, attr, value in patches:
            saved.append((owner, attr, getattr(owner, attr)))
            setattr(owner, attr, value)

    medians: dict[str, list[float]] = {name: [] for name in rows}
    with tempfile.TemporaryDirectory() as tmp:
        audit = Path(tmp) / "audit.jsonl"
        for name in rows:  # warm-up
            configure(name, audit)
            bench.block(bench.client(), 50)
        for _ in range(args.rounds):
            order = list(rows)
            random.shuffle(order)
            for name in order:
                configure(name, audit)
                medians[name].append(statistics.median(cpu for _, cpu in bench.block(bench.client(), args.calls)))
        configure("uninstrumented", audit)
        harness.reset()
    def diff(row: str, base: str) -> tuple[float, float, float]:
        values = sorted(b - r for r, b in zip(medians[row], medians[base], strict=True))
        return statistics.median(values), values[len(values) // 4], values[3 * len(values) // 4]

    print(f"{args.rounds} rounds x {args.calls} calls per row, random order per round; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; uninstrumented CPU p50 "
          f"{statistics.median(medians['uninstrumented']):.1f} µs")
    print("CPU µs at p50, median over rounds (interquartile range over rounds)")
    plain, audit_row = diff("uninstrumented", "plain"), diff("uninstrumented", "audit")

    def show(label: str, d: tuple[float, float, float]) -> None:
        print(f"  {label:50} {d[0]:7.1f}   ({d[1]:.1f} .. {d[2]:.1f})")

    show("plain call added (observe, no sink)", plain)
    show("call + JSONL audit added", audit_row)
    print("what each part costs in place (the row minus the row with a stand-in):")
    for name, (base, _, _) in parts.items():
        show(name, diff(name, base))


if __name__ == "__main__":
    main()
