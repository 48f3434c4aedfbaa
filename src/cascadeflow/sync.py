"""Sync twins of async APIs: run a coroutine to completion from synchronous code.

One background event loop per process serves every sync call, so the pooled HTTP client of that loop is
reused across calls and threads. Calling a sync twin from inside a running event loop would block that
loop, so it is refused with a clear error instead.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="cascadeflow-sync-loop", daemon=True)
            thread.start()
            _loop = loop
        return _loop


def run_sync(coro: Coroutine[Any, Any, T], *, what: str = "this call") -> T:
    """Run `coro` on the background loop and wait; the caller's context variables travel with it."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        coro.close()
        raise RuntimeError(
            f"{what} is the synchronous twin and cannot run inside a running event loop; "
            f"await the async version instead"
        )
    ctx = contextvars.copy_context()
    loop = _background_loop()
    future = asyncio.run_coroutine_threadsafe(_in_context(coro, ctx), loop)
    try:
        return future.result()
    except BaseException:
        future.cancel()
        raise


async def _in_context(coro: Coroutine[Any, Any, T], ctx: contextvars.Context) -> T:
    # Run the coroutine as a task created inside the caller's context so run scopes (contextvars) apply.
    task = asyncio.get_running_loop().create_task(coro, context=ctx)
    return await task
