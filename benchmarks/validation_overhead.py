"""Benchmark: the cost of assess() (validation + bookkeeping, no provider time) on a realistic 300-token draft.

Run: .venv/bin/python benchmarks/validation_overhead.py [--iterations N] [--recorded gsm8k_responses.csv]
                                                         [--zellinger zellinger-cascades/]
Prints p50/p99 per configuration and per signal, in CPU time of the measuring thread (what validation costs,
without time spent waiting for a core on a shared machine) and in wall time, next to a fixed reference loop
(300 additions) timed in between, so runs on machines of different speed and load can be compared. `--recorded` / `--zellinger` also run assess() (default config)
over real recorded answers with correctness labels (no logprobs in them) and report how often it accepts or
vetoes right and wrong answers: the false-reject side of each signal, measured.
"""

from __future__ import annotations

import argparse
import csv
import gc
import gzip
import json
import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from cascadeflow.cascade.calibration import Calibration, brier_score, split_rows
from cascadeflow.cascade.quality import QualityConfig, Verdict, assess, collect_signals
from cascadeflow.messages import Message, Request, Response, TokenLogprob, ToolCall, Usage, build_request

QUESTION = ("Our checkout service p99 latency jumped from 180 ms to 2.4 s after the 14:05 deploy. The database "
            "CPU is at 35% and the connection pool shows 48 of 50 connections in use. What is the most likely "
            "root cause, how should we confirm it, and what is the fastest safe mitigation?")
DRAFT = """The most likely root cause is connection pool exhaustion introduced by the 14:05 deploy, not the \
database itself: CPU at 35% says the database has headroom, while 48 of 50 pool connections in use says requests \
are queueing for a connection before they ever reach it.

How to confirm it:
1. Compare pool wait time before and after the deploy. If the p99 of pool acquisition is close to the 2.4 s \
end-to-end latency, the queue explains the jump: 2.4 s - 0.18 s = 2.22 s of extra waiting per slow request.
2. Check the diff of the deploy for a new query inside a loop or a transaction held open across a remote call; \
either keeps connections checked out longer.
3. Look at active queries on the database. With 48 connections busy but low CPU, most sessions will be idle in \
transaction.

Fastest safe mitigation: roll back the 14:05 deploy. Raising the pool size from 50 to 100 only helps if the \
database can take it; at 35% CPU it probably can, but 2 x 50 = 100 connections also doubles memory use on the \
primary, so treat it as a stopgap while the rollback runs.

```python
# quick check of pool pressure from the metrics export
busy, size = 48, 50
print(f"pool utilisation: {busy / size:.0%}")
```

After the rollback, watch pool wait time and p99 latency for 15 minutes before closing the incident."""
SCHEMA_TOOL = {"name": "page_oncall", "parameters": {"type": "object", "required": ["team"],
               "properties": {"team": {"type": "string"}, "urgency": {"enum": ["low", "high"]}}}}


def draft_response(tokens: int = 300, draw: int = 7) -> Response:
    """The draft with `tokens` logprob entries (word pieces), as an OpenAI-style provider returns them."""
    rng = random.Random(draw)
    pieces = DRAFT.replace("\n", " \n ").split(" ")
    lps = tuple(TokenLogprob(pieces[i % len(pieces)], math.log(rng.uniform(0.55, 1.0))) for i in range(tokens))
    return Response(content=DRAFT, model="draft-model", provider="bench", logprobs=lps,
                    usage=Usage(input_tokens=90, output_tokens=tokens))


def _reference_loop() -> int:
    total = 0
    for i in range(300):
        total += i
    return total


def percentiles(fns: list[Callable[[], object]], iterations: int, chunk: int = 100) -> list[dict[str, float]]:
    """Per function: p50/p99 in µs of wall time and of this thread's CPU time, the p50 CPU time of a reference
    loop timed right after each call, and p50 CPU / reference p50. The functions run interleaved in chunks, so
    all of them see the same machine conditions (the machine may be shared; CPU time leaves out time spent
    waiting for a core, the reference shows how fast the core was)."""
    for fn in fns:
        for _ in range(min(200, iterations)):
            fn()  # warm caches (compiled regexes, schema validators, stems)
    samples: list[tuple[list[int], list[int], list[int]]] = [([], [], []) for _ in fns]
    wall_clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    for _ in range(0, iterations, chunk):
        for fn, (wall, cpu, ref) in zip(fns, samples):
            for _ in range(chunk):
                w0, c0 = wall_clock(), cpu_clock()
                fn()
                c1, w1 = cpu_clock(), wall_clock()
                _reference_loop()
                ref.append(cpu_clock() - c1)
                wall.append(w1 - w0)
                cpu.append(c1 - c0)
    out = []
    for wall, cpu, ref in samples:
        for xs in (wall, cpu, ref):
            xs.sort()
        pick = lambda xs, q: xs[min(len(xs) - 1, int(len(xs) * q))] / 1000
        stats = {"wall50": pick(wall, 0.5), "wall99": pick(wall, 0.99), "cpu50": pick(cpu, 0.5),
                 "cpu99": pick(cpu, 0.99), "ref50": pick(ref, 0.5)}
        stats["ratio"] = stats["cpu50"] / stats["ref50"]
        out.append(stats)
    return out


def scenarios(iterations: int) -> list[tuple[str, dict[str, float]]]:
    request = build_request([Message.system("You are the on-call assistant."), Message.user(QUESTION)])
    response = draft_response()
    cal = Calibration.fit([({"logprob": x / 20, "relevance": 1.0, "structure": 1.0}, x > 8) for x in range(21)] * 3)
    tool_request = build_request(QUESTION, tools=[SCHEMA_TOOL])
    tool_response = Response("", "m", "bench", tool_calls=(ToolCall("1", "page_oncall", '{"team": "db"}'),),
                             finish_reason="tool_calls")
    json_cfg = QualityConfig(json_schema={"type": "object", "required": ["cause"],
                                          "properties": {"cause": {"type": "string"}}})
    json_response = Response('{"cause": "connection pool exhaustion after the 14:05 deploy"}', "m", "bench")
    rows = [
        ("300-token draft, logprobs, default config", request, response, QualityConfig()),
        ("same, calibrated", request, response, QualityConfig(calibration=cal)),
        ("same, strict preset, complexity=hard", request, response, QualityConfig.strict()),
        ("tool call validated against its schema", tool_request, tool_response, QualityConfig()),
        ("JSON answer validated against a schema", request, json_response, json_cfg),
    ]
    fns = [lambda req=req, res=res, cfg=cfg: assess(req, res, cfg, complexity="hard") for _, req, res, cfg in rows]
    return list(zip([label for label, *_ in rows], percentiles(fns, iterations)))


def per_signal(iterations: int) -> list[tuple[str, dict[str, float]]]:
    request = build_request([Message.system("You are the on-call assistant."), Message.user(QUESTION)])
    response = draft_response()
    names = ("structure", "format", "tool_args", "logprob", "relevance", "arithmetic", "code")
    configs = [QualityConfig(signals=[name]) for name in names]
    fns = [lambda cfg=cfg: collect_signals(request, response, cfg) for cfg in configs]
    return list(zip(names, percentiles(fns, iterations)))


def _tally(pairs: list[tuple[Request, Response, bool]]) -> dict[str, object]:
    """Decisions of the default config on labelled recorded answers, split by whether the answer was right."""
    cfg = QualityConfig()
    gc.freeze()  # the loaded data set is long-lived: keep the collector from rescanning it inside the timings
    right = sum(ok for _, _, ok in pairs)
    counts = {"accepted": [0, 0], "arithmetic veto": [0, 0], "relevance < 0.7": [0, 0], "any veto": [0, 0],
              "no relevance signal": [0, 0]}
    times = []
    for req, res, ok in pairs:
        start = time.thread_time_ns()
        verdict = assess(req, res, cfg)
        times.append((time.thread_time_ns() - start) / 1000)
        rel = verdict.signal("relevance")
        arith = verdict.signal("arithmetic")
        for key, hit in (("accepted", verdict.accepted), ("arithmetic veto", arith is not None and arith.veto),
                         ("relevance < 0.7", rel is not None and rel.score < 0.7), ("any veto", bool(verdict.vetoes)),
                         ("no relevance signal", rel is None)):
            counts[key][0 if ok else 1] += hit
    return {"n": len(pairs), "right": right, "counts": counts, "cpu50": statistics.median(times)}


def routellm_gsm8k(path: str) -> dict[str, dict[str, object]]:
    csv.field_size_limit(10**8)
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    out = {}
    for model in ("mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"):
        out[f"gsm8k {model.split('/')[-1]}"] = _tally(
            [(build_request(r["prompt"]), Response(r[f"{model}_response"], model, "recorded"), r[model] == "True")
             for r in rows])
    return out


def zellinger(folder: str) -> dict[str, dict[str, object]]:
    out = {}
    for path in sorted(Path(folder).glob("*.qwen_oai.train.jsonl.gz")):
        pairs = []
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                d = json.loads(line)
                req = build_request([Message.system(d["system_prompt"]), Message.user(d["user_prompt"])])
                pairs.extend((req, Response(str(m["answer"]), name, "recorded"), bool(m["correct"]))
                             for name, m in d["models"].items())
        out[path.name.split(".")[0] + " (4 models)"] = _tally(pairs)
    return out


def _drafter_rows(path: Path, drafter: str) -> list[tuple[int, Verdict, bool, float | None]]:
    rows = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            m = d["models"][drafter]
            req = build_request([Message.system(d["system_prompt"]), Message.user(d["user_prompt"])])
            conf = math.exp(m["confidence_raw"]) if m["confidence_raw"] is not None else None
            res = Response(str(m["answer"]), drafter, "recorded", confidence=conf)
            rows.append((d["idx"], assess(req, res, QualityConfig()), bool(m["correct"]), conf))
    return rows


def _brier(probabilities: list[float], labels: list[bool]) -> float:
    return sum((p - ok) ** 2 for p, ok in zip(probabilities, labels)) / len(labels)


def calibration_check(folder: str, drafter: str = "gpt-4o-mini") -> str:
    """Fit a Calibration on 70% of each data set's queries (split by query index) from the drafter's recorded
    confidence plus the other signals, and score it on the held-out 30% with the Brier score, next to the
    base rate of the training part and the raw confidence used as a probability."""
    lines = ["| data set | train / eval | Brier: base rate | raw confidence | calibrated | logprob weight |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for path in sorted(Path(folder).glob("*.qwen_oai.train.jsonl.gz")):
        rows = _drafter_rows(path, drafter)
        train, held_out = split_rows(rows, key=lambda r, name=path.name: f"{name}:{r[0]}", eval_fraction=0.3)
        cal = Calibration.fit([(v, ok) for _, v, ok, _ in train])
        base = sum(ok for _, _, ok, _ in train) / len(train)
        labels = [ok for _, _, ok, _ in held_out]
        raw = _brier([c if c is not None else base for *_, c in held_out], labels)
        fitted = brier_score(cal, [(v, ok) for _, v, ok, _ in held_out])
        lines.append(f"| {path.name.split('.')[0]} | {len(train)} / {len(held_out)} "
                     f"| {_brier([base] * len(labels), labels):.4f} | {raw:.4f} | {fitted:.4f} "
                     f"| {cal.weights.get('logprob', (0.0, 0.0))[0]:+.2f} |")
    return "\n".join(lines) + "\n"


def _tally_table(results: dict[str, dict[str, object]]) -> str:
    keys = ("accepted", "any veto", "arithmetic veto", "relevance < 0.7", "no relevance signal")
    lines = ["| recorded answers | n | right | p50 CPU µs | " + " | ".join(f"{k} (right / wrong)" for k in keys) + " |",
             "| --- | ---: | ---: | ---: |" + " ---: |" * len(keys)]
    for label, r in results.items():
        n, right, counts = r["n"], r["right"], r["counts"]
        cells = [f"{counts[k][0] / max(1, right):.1%} / {counts[k][1] / max(1, n - right):.1%}" for k in keys]
        lines.append(f"| {label} | {n} | {right} | {r['cpu50']:.0f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _row(label: str, st: dict[str, float]) -> str:
    return (f"| {label} | {st['cpu50']:.1f} | {st['cpu99']:.1f} | {st['wall50']:.1f} | {st['wall99']:.1f} "
            f"| {st['ref50']:.1f} | {st['ratio']:.1f} |\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5000)
    parser.add_argument("--recorded", help="path of RouteLLM's gsm8k_responses.csv (optional)")
    parser.add_argument("--zellinger", help="folder of the zellinger-cascades *.train.jsonl.gz files (optional)")
    args = parser.parse_args(argv)
    out = sys.stdout.write
    out(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}, {args.iterations} iterations each\n\n")
    header = "| p50 CPU µs | p99 CPU µs | p50 wall µs | p99 wall µs | reference loop p50 µs | p50 / reference |\n"
    rule = "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n"
    out("| scenario " + header + rule)
    for label, st in scenarios(args.iterations):
        out(_row(label, st))
    out("\n| signal alone (same draft) " + header + rule)
    for label, st in per_signal(args.iterations):
        out(_row(label, st))
    recorded: dict[str, dict[str, object]] = {}
    if args.recorded:
        recorded.update(routellm_gsm8k(args.recorded))
    if args.zellinger:
        recorded.update(zellinger(args.zellinger))
    if recorded:
        out("\n" + _tally_table(recorded))
    if args.zellinger:
        out("\ncalibration of gpt-4o-mini drafts (fit on 70% of queries, Brier on the other 30%; lower is better)\n\n")
        out(calibration_check(args.zellinger))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
