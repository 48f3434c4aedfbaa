"""Worker processes for the multi-process budget tests: a call loop and a queue drain (for multiprocessing
with spawn), and a command-line "hold" mode that reserves, reports, and waits to be killed."""

from __future__ import annotations

import random
import sys
import time

from cascadeflow.budget import open_ledger
from cascadeflow.errors import BudgetExceeded
from cascadeflow.runtime.pipeline import Charge


def run_calls(url: str, key: str, limit_micro: int, calls: int, worker: int) -> dict[str, int]:
    """`calls` reserve/settle rounds with worst cases of $0.01–$0.05 and a random actual cost below each."""
    ledger = open_ledger(url)
    rng = random.Random(worker)
    admitted = refused = settled = 0
    for i in range(calls):
        worst = rng.randint(10_000, 50_000)
        rid = f"p{worker}-{i}"
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


def drain_queue(path: str) -> list[str]:
    """Drain a shared DeferredQueue; returns the ids this process handled."""
    from cascadeflow.budget.queue import DeferredQueue

    queue = DeferredQueue(path, visibility_seconds=600)
    handled: list[str] = []

    def handle(item: object) -> None:
        handled.append(item.id)  # type: ignore[attr-defined]
        time.sleep(0.002)  # some work, so the drains of the other processes overlap with this one

    queue.drain(handle)
    queue.close()
    return handled


def hold(url: str, key: str, limit_micro: int, amount: int, lease: float, rid: str) -> None:
    ledger = open_ledger(url)
    ledger.reserve(rid, [Charge(key, limit_micro)], amount, lease)
    print("reserved", flush=True)
    time.sleep(600)  # the test kills us with SIGKILL long before this ends


if __name__ == "__main__":
    _, mode, url, key, limit, amount, lease, rid = sys.argv
    assert mode == "hold"
    hold(url, key, int(limit), int(amount), float(lease), rid)
