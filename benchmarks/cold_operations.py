"""Single operations on the harness's path, timed where the harness runs them: right after an SDK call.

harness_overhead.py shows the harness costs about 2.5 times more right after an SDK call than in a tight loop:
the SDK's own work leaves the harness's code out of the CPU caches. An operation whose C code nothing else on
the call's path uses pays that on every call. This times operations one at a time, each right after an untimed,
uninstrumented openai call (harness_overhead.py's call and client), and again in a tight loop ("warm"). Each
pair is an earlier form of the harness's code and the form it has now:

- a latency rounded with round(x, 3) (through CPython's decimal conversion code) against `round_ms` (integer
  arithmetic), each then written as the audit line writes it (float.__repr__);
- the timestamp's milliseconds with a format spec against `now_iso`'s table;
- the request id's counter with a format spec against `new_request_id`'s hex();
- the audit write's parts as they are now (`Runtime.audit_record`, `record_line`, the sink's append).

The operations run in a random order in each round, so none always follows the SDK call's same point.
Figures are medians of wall-clock ns per operation (the CPU-time clock is a system call; its own cold cost
would swamp the figures), with the empty call's median listed first.

    .venv/bin/python benchmarks/cold_operations.py [--rounds 2000] [--seed N]
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import harness_overhead as bench  # the same SDK call and client

from cascadeflow import harness
from cascadeflow.harness import state
from cascadeflow.runtime import stamps
from cascadeflow.runtime.stamps import round_ms
from cascadeflow.trace.redact import record_line

LATENCY_MS = 11.053417  # an attempt's latency as the clock gives it, before rounding


def operations(audit_dir: Path) -> dict[str, Callable[[], object]]:
    """name -> operation; the audit parts use a record made by one real instrumented call."""
    harness.init(mode="observe", audit=str(audit_dir / "audit.jsonl"))
    runtime = state.default_runtime()
    sink = runtime.sinks[0]
    seen: dict[str, object] = {}
    finish = runtime.finish

    def keep(call: object, **kwargs: object) -> object:
        seen["call"], seen["kwargs"] = call, kwargs
        return finish(call, **kwargs)  # type: ignore[arg-type]

    runtime.finish = keep  # type: ignore[method-assign]
    bench.client().chat.completions.create(model="gpt-4o-mini", messages=bench.MESSAGES, max_tokens=16)
    runtime.finish = finish  # type: ignore[method-assign]
    call, kwargs = seen["call"], seen["kwargs"]
    record = runtime.audit_record(call, **kwargs)  # type: ignore[arg-type]
    line = record_line(record).encode() + b"\n"
    counter = itertools.count()
    second = stamps._iso_second[1] or "2026-11-25T00:00:00"
    return {
        "empty call": lambda: None,
        "latency: round(x, 3) + float.__repr__": lambda: float.__repr__(round(LATENCY_MS, 3)),
        "latency: round_ms (now) + float.__repr__": lambda: float.__repr__(round_ms(LATENCY_MS)),
        "timestamp millis: f'{n:03d}'": lambda: f"{second}.{time.time_ns() // 1_000_000 % 1000:03d}Z",
        "timestamp: now_iso (now)": stamps.now_iso,
        "request id: f'{n:016x}'": lambda: f"{'0' * 16}{next(counter):016x}",
        "request id: new_request_id (now)": stamps.new_request_id,
        "audit record: Runtime.audit_record": lambda: runtime.audit_record(call, **kwargs),  # type: ignore[arg-type]
        "audit line: record_line": lambda: record_line(record),
        "append: JsonlSink._append": lambda: sink._append(line),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        ops = operations(Path(tmp))
        harness.reset()  # the untimed calls in between are uninstrumented; the operations still work on their own
        oa = bench.client()
        cold: dict[str, list[int]] = {name: [] for name in ops}
        names = list(ops)
        for _ in range(args.rounds):
            rng.shuffle(names)
            for name in names:
                operation = ops[name]
                oa.chat.completions.create(model="gpt-4o-mini", messages=bench.MESSAGES, max_tokens=16)
                t0 = time.perf_counter_ns()
                operation()
                cold[name].append(time.perf_counter_ns() - t0)
        warm: dict[str, list[int]] = {name: [] for name in ops}
        for name, operation in ops.items():
            for _ in range(args.rounds):
                t0 = time.perf_counter_ns()
                operation()
                warm[name].append(time.perf_counter_ns() - t0)
    print(f"{args.rounds} rounds; median ns per operation: right after an untimed openai call (cold) and in a "
          f"tight loop (warm)")
    print(f"{'operation':44} {'cold':>8} {'warm':>8}")
    for name in ops:
        print(f"{name:44} {statistics.median(cold[name]):8.0f} {statistics.median(warm[name]):8.0f}")


if __name__ == "__main__":
    main()
