"""Blocking ledger calls of the async path, run in a worker thread so that a storm of calls does not queue
behind each other's SQLite (or network) round trips on the event loop.

Only ledgers that block are moved: a ledger saying `blocks = False` (the memory ledger) is called inline,
where a thread hop would cost more than the call. A call the pipeline drives by hand (a synchronous SDK
call, or a stream settled when its caller finishes reading) must not suspend outside its send, so its
ledger calls run inline too (`CallContext.inline_ledger`).

The store's own atomicity keeps the no-overshoot guarantee: a reservation is one transaction whichever
thread runs it. What the thread hop adds is a caller cancelled while its reservation is being made: the
reservation is then still made, so it is released as soon as it lands instead of being held until its
lease ends.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from cascadeflow.errors import BudgetBackendUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

# Threads for the ledger calls of every Runtime in the process. A few, not one per call: SQLite serialises
# writers anyway, and a networked store gains little past a handful of requests in flight per process.
LEDGER_THREADS = 4

_executors: dict[int, ThreadPoolExecutor] = {}  # by process id: a forked child starts its own threads
_executors_lock = threading.Lock()


def _ledger_executor() -> ThreadPoolExecutor:
    pid = os.getpid()
    found = _executors.get(pid)
    if found is None:
        with _executors_lock:
            found = _executors.get(pid)
            if found is None:
                _executors.clear()  # the parent's, inherited over fork(): its threads do not exist here
                found = _executors[pid] = ThreadPoolExecutor(max_workers=LEDGER_THREADS,
                                                             thread_name_prefix="cascadeflow-ledger")
    return found


def blocks(ledger: Any) -> bool:
    """Whether `ledger`'s calls may block (every ledger but those that say otherwise)."""
    return bool(getattr(ledger, "blocks", True))


async def off_loop(inline: bool, run: Callable[..., T], *args: Any,
                   undo: Callable[[T], object] | None = None) -> T:
    """`run(*args)`, in a ledger thread unless `inline`. When the awaiting task is cancelled meanwhile, the
    call still completes in its thread (it cannot be taken back mid-transaction) and `undo(result)` then
    runs in a ledger thread too."""
    if inline:
        return run(*args)
    future = asyncio.get_running_loop().run_in_executor(_ledger_executor(), functools.partial(run, *args))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        if undo is not None:
            future.add_done_callback(functools.partial(_undo_when_done, undo))
        raise


def _undo_when_done(undo: Callable[[Any], object], future: asyncio.Future[Any]) -> None:
    if future.cancelled() or future.exception() is not None:
        return  # nothing was made
    done: Future[object] = _ledger_executor().submit(undo, future.result())
    done.add_done_callback(_log_failed_undo)


def _log_failed_undo(done: Future[object]) -> None:
    error = done.exception()
    if isinstance(error, BudgetBackendUnavailable):
        log.error("ledger unreachable while giving back the reservation of a cancelled call; it is kept until "
                  "its lease expires")
    elif error is not None:
        log.error("giving back the reservation of a cancelled call failed", exc_info=error)
