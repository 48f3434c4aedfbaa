"""Memory a long-lived process's memory ledger holds: N calls (reserve + settle) through `open_ledger("memory://")`
with its defaults, 50 users with day windows and runs of 20 calls, a fake clock advancing 0.5 s per call
(a million calls span 5.8 days). Prints the growth of the process's peak RSS.

    .venv/bin/python benchmarks/memory_ledger_growth.py 1000000
"""

from __future__ import annotations

import resource
import sys

from cascadeflow.budget import open_ledger
from cascadeflow.budget.windows import window_key
from cascadeflow.runtime.pipeline import Charge


class FakeClock:
    def __init__(self, start: float = 1_795_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now


def main(calls: int) -> None:
    clock = FakeClock()
    ledger = open_ledger("memory://", clock=clock)
    day_keys: dict[tuple[int, int], Charge] = {}
    start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for i in range(calls):
        day, user = int(clock() // 86_400), i % 50
        if (day, user) not in day_keys:
            day_keys[(day, user)] = Charge(window_key(f"user:u{user}", "day", clock()), 10**12)
        ledger.reserve(f"c{i}", [day_keys[(day, user)], Charge(f"run:{i // 20}", 10**9)], 2_000, 300)
        ledger.settle(f"c{i}", 1_000)
        clock.now += 0.5
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start) // 1024
    print(f"{calls} calls: peak RSS grew {grown} MiB")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
