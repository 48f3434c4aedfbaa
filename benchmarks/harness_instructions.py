"""The harness's overhead in instructions, not seconds: what each configuration adds to an openai SDK call,
counted by valgrind's cachegrind, so the figure is the same on a quiet machine and a noisy one.

The timing benchmarks (harness_overhead.py, harness_interleaved.py) answer the issue's question in µs, but
their figures move with the machine: on 2026-11-25 the same code gave an added audit cost of 94-125 µs on one
machine, and on the next 230-376 µs in its first minutes and 86-121 µs an hour later. Instruction counts do
not move. They leave out what makes
the µs figure machine-dependent: how much the harness's code and data push the SDK's out of the CPU caches (and
the reverse). cachegrind's simulated first-level caches give a rough picture of that too: the instruction-cache
misses each configuration adds per call.

How: each configuration runs in its own process under `valgrind --tool=cachegrind`, twice: once with
`--calls-small` calls after the warm-up and once with `--calls-large`. The per-call figure is the difference of
the two runs divided by the difference in calls, so start-up, imports and the warm-up cancel out. The call and
the client are harness_overhead.py's (openai `chat.completions.create` against an in-process httpx
MockTransport). PYTHONHASHSEED=0 and `gc.freeze()` before the counted calls keep the runs repeatable; repeated
runs agree to within about 15,000 instructions per call (of about 5.5 million).

After the table it lists the C functions that account for most of what the audit write adds (the audit row
minus the plain instrumented row, per call). CPython's own C functions show there; Python code shows as the
interpreter loop (`_PyEval_EvalFrameDefault`), which the list does not break down.

    .venv/bin/python benchmarks/harness_instructions.py [--calls-small 20] [--calls-large 120] [--jobs N]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import gc
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from harness_interleaved import ROWS  # the same configurations, in the same order

WARM_UP = 60
AUDIT, PLAIN = "instrumented, no run scope + JSONL audit", "instrumented, no run scope, no sink"
TOP_FUNCTIONS = 20


def child(name: str, calls: int, audit_dir: Path) -> None:
    """Set up one configuration with the public API, warm it up, then make `calls` counted calls."""
    import harness_overhead as bench

    from cascadeflow import harness

    mode, audit, scoped = ROWS[name]
    if mode != "off":
        harness.init(mode=mode, audit=str(audit_dir / "audit.jsonl") if audit else False)
    oa = bench.client()
    with harness.run(budget=1000.0) if scoped else contextlib.nullcontext():
        for _ in range(WARM_UP):
            oa.chat.completions.create(model="gpt-4o-mini", messages=bench.MESSAGES, max_tokens=16)
        gc.collect()
        gc.freeze()  # the collector's passes over old objects would land in whichever run crosses a threshold
        for _ in range(calls):
            oa.chat.completions.create(model="gpt-4o-mini", messages=bench.MESSAGES, max_tokens=16)
    harness.reset()
    if audit:
        lines = sum(1 for _ in (audit_dir / "audit.jsonl").open())
        if lines != WARM_UP + calls:  # the audit rows must really have written a line per call
            raise SystemExit(f"{name}: {lines} audit lines for {WARM_UP + calls} calls")


Counts = tuple[dict[str, int], dict[str, list[int]], list[str]]


def counts(name: str, calls: int, work: Path) -> Counts:
    """Run one configuration under cachegrind; (event -> total, "file:function" -> totals in event order, the
    simulated caches' descriptions)."""
    out = work / f"cg-{list(ROWS).index(name)}-{calls}.out"
    audit_dir = Path(tempfile.mkdtemp(dir=work))
    env = dict(os.environ, PYTHONHASHSEED="0")
    done = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=yes", f"--cachegrind-out-file={out}", sys.executable,
         __file__, "--child", name, str(calls), str(audit_dir)],
        env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"cachegrind run of {name!r} ({calls} calls) failed:\n{done.stderr[-2000:]}")
    return parse(out)


def parse(out: Path) -> Counts:
    """A cachegrind output file's totals, per-function totals and cache descriptions (see `counts`)."""
    events: list[str] = []
    totals: list[int] = []
    caches: list[str] = []
    functions: dict[str, list[int]] = collections.defaultdict(lambda: [0] * len(events))
    source, function = "", ""
    for line in out.read_text().splitlines():
        if line[:1].isdigit():  # "<line number> <count per event>...", trailing zero counts left out
            sums = functions[f"{source}:{function}"]
            for index, value in enumerate(line.split()[1:]):
                sums[index] += int(value)
        elif line.startswith("fl="):
            source = line[3:].rsplit("/", 1)[-1]
        elif line.startswith("fn="):
            function = line[3:]
        elif line.startswith("events:"):
            events = line.split()[1:]
        elif line.startswith("summary:"):
            totals = [int(value) for value in line.split()[1:]]
        elif line.startswith("desc:"):
            caches.append(line.removeprefix("desc:").strip())
    return dict(zip(events, totals, strict=True)), dict(functions), caches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls-small", type=int, default=20)
    parser.add_argument("--calls-large", type=int, default=120)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="cachegrind runs at once (counts do not depend on it)")
    parser.add_argument("--child", nargs=3, metavar=("ROW", "CALLS", "AUDIT_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), Path(args.child[2]))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed; install it (Debian: apt-get install valgrind) to count "
                         "instructions")
    if args.calls_large <= args.calls_small:
        raise SystemExit("--calls-large must be more than --calls-small")
    import openai

    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as pool:
        jobs = {(name, calls): pool.submit(counts, name, calls, Path(tmp))
                for name in ROWS for calls in (args.calls_small, args.calls_large)}
        results = {key: job.result() for key, job in jobs.items()}
    span = args.calls_large - args.calls_small
    per_call: dict[str, dict[str, float]] = {}
    for name in ROWS:
        small, _, caches = results[(name, args.calls_small)]
        large, _, _ = results[(name, args.calls_large)]
        per_call[name] = {event: (large[event] - small[event]) / span for event in large}
    base = per_call["uninstrumented"]
    events = list(base)  # the order of every per-function list

    def misses(row: dict[str, float], kind: str) -> float:
        return row[f"{kind}mr"] + row.get(f"{kind}mw", 0.0)

    print(f"openai {openai.__version__}, httpx MockTransport; valgrind cachegrind, per call = (run of "
          f"{args.calls_large} calls - run of {args.calls_small}) / {span}, after {WARM_UP} warm-up calls each; "
          f"PYTHONHASHSEED=0")
    print("simulated caches: " + "; ".join(caches))
    print("instructions and first-level cache misses per call; added = this row - uninstrumented")
    print(f"{'configuration':42} {'instr':>10} {'added':>9} {'added %':>8} {'I1 miss':>8} {'added':>7} "
          f"{'D1 miss':>8} {'added':>7}")
    for name, row in per_call.items():
        added = row["Ir"] - base["Ir"]
        print(f"{name:42} {row['Ir']:10.0f} {added:9.0f} {100 * added / base['Ir']:7.1f}% "
              f"{row['I1mr']:8.0f} {row['I1mr'] - base['I1mr']:7.0f} "
              f"{misses(row, 'D1'):8.0f} {misses(row, 'D1') - misses(base, 'D1'):7.0f}")
    ir, i1 = events.index("Ir"), events.index("I1mr")
    zero = [0] * len(events)
    runs = [results[(AUDIT, args.calls_large)][1], results[(AUDIT, args.calls_small)][1],
            results[(PLAIN, args.calls_large)][1], results[(PLAIN, args.calls_small)][1]]
    # per function: ((audit large - audit small) - (plain large - plain small)) / span
    added = {key: [(a - b - c + d) / span for a, b, c, d in zip(*(run.get(key, zero) for run in runs), strict=True)]
             for key in set().union(*runs)}
    total_ir = per_call[AUDIT]["Ir"] - per_call[PLAIN]["Ir"]
    total_i1 = per_call[AUDIT]["I1mr"] - per_call[PLAIN]["I1mr"]
    print(f"\nwhat the audit write adds per call (audit row - plain row): {total_ir:.0f} instructions, {total_i1:.0f} "
          f"I1 misses; the {TOP_FUNCTIONS} C functions adding the most instructions:")
    print(f"{'file:function':60} {'instr':>8} {'share':>6} {'I1 miss':>8} {'share':>6}")
    for key, sums in sorted(added.items(), key=lambda item: -item[1][ir])[:TOP_FUNCTIONS]:
        print(f"{key[:60]:60} {sums[ir]:8.0f} {100 * sums[ir] / total_ir:5.1f}% {sums[i1]:8.0f} "
              f"{100 * sums[i1] / total_i1:5.1f}%")
    # CPython's float <-> text code, and the libc snprintf it calls to write an exponent ("e-06")
    float_text = ("dtoa.c:", "pystrtod.c:", "vfprintf-internal.c:", "vfprintf-process-arg.c:", "genops.c:")
    floats = [sums for key, sums in added.items() if key.startswith(float_text)]
    print("float <-> text (dtoa.c, pystrtod.c, and libc's snprintf, which writes the exponent): "
          f"{sum(s[ir] for s in floats):.0f} instructions, {sum(s[i1] for s in floats):.0f} I1 misses per call")


if __name__ == "__main__":
    main()
