"""Carrying run scopes into threads: `spawn_thread` and `ContextThreadPoolExecutor` copy the caller's
context variables (the current run scope among them) into the work they start.

For any other pool, submit `contextvars.copy_context().run` with your function: `pool.submit(ctx.run, fn, x)`.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


def spawn_thread(target: Callable[..., Any], *args: Any, name: str | None = None, daemon: bool | None = None,
                 start: bool = True, **kwargs: Any) -> threading.Thread:
    """A Thread running `target(*args, **kwargs)` inside a copy of the caller's context (started by default)."""
    ctx = contextvars.copy_context()
    thread = threading.Thread(target=ctx.run, args=(target, *args), kwargs=kwargs, name=name, daemon=daemon)
    if start:
        thread.start()
    return thread


class ContextThreadPoolExecutor(ThreadPoolExecutor):
    """A ThreadPoolExecutor whose tasks run in the context of the code that submitted them."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        ctx = contextvars.copy_context()
        return super().submit(ctx.run, fn, *args, **kwargs)
