"""Worker processes for the multi-process ledger tests: a call loop (for multiprocessing with spawn) and a
command-line "hold" mode that reserves, reports, and waits to be killed."""

from __future__ import annotations

import random
import sys
import time

from cascadeflow.budget.ledger import open_ledger
from cascadeflow.errors import BudgetExceeded
from cascadeflow.runtime.pipeline import Charge


def run_calls(url: str, key: str, limit_micro: int, calls: int, seed: int) -> dict[str, int]:
    """`calls` reserve/settle rounds with worst cases of $0.01–$0.05 and a random actual cost below each."""
    ledger = open_ledger(url)
    rng = random.Random(seed)
    admitted = refused = settled = 0
    for i in range(calls):
        worst = rng.randint(10_000, 50_000)
        rid = f"p{seed}-{i}"
        try:
            ledger.reserve(rid, [Charge(key, limit_micro)], worst, 60)
        except BudgetExceeded:
            refused += 1
            continue
        actual = rng.randint(0, worst - 1)
        ledger.settle(rid, actual)
        admitted += 1
        settled += actual
    ledger.close()
    return {"admitted": admitted, "refused": refused, "settled": settled}


def hold(url: str, key: str, limit_micro: int, amount: int, lease: float, rid: str) -> None:
    ledger = open_ledger(url)
    ledger.reserve(rid, [Charge(key, limit_micro)], amount, lease)
    print("reserved", flush=True)
    time.sleep(600)  # the test kills us with SIGKILL long before this ends


if __name__ == "__main__":
    _, mode, url, key, limit, amount, lease, rid = sys.argv
    assert mode == "hold"
    hold(url, key, int(limit), int(amount), float(lease), rid)
