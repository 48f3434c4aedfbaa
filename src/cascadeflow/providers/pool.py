"""The pooled HTTP transports: one httpx transport per (process, event loop), over aiohttp's connection pool.

The transport is aiohttp's (through httpx-aiohttp), chosen by measurement: under a storm of 1,000
concurrent calls httpx's own pool spent milliseconds of CPU per call in its connection bookkeeping, aiohttp
a fraction of one (docs/benchmarks.md). Requests are handed to the transport directly (`HttpCaller` builds
each `httpx.Request` itself): an `httpx.AsyncClient` in front would add its URL merging, cookie jar and
redirect layers, about half of what a call costs in the HTTP layer, for features an API call does not use.
The pool has no limit of its own: the admission gates bound what is in flight per provider. Sessions are closed when their event loop is gone (or at exit), so aiohttp has no
unclosed session to warn about.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
import weakref
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

# An idle connection is dropped before common servers' own keep-alive timeout (5 s for uvicorn, Node and
# httpx's default): reusing one the server is closing at that moment cuts the request after it was sent,
# an outcome the pipeline must then charge as unknown.
KEEPALIVE_S = 4.0


# Whether the current task's last request went out on a pooled (reused) connection. A host that closes an
# idle connection just as a request is written on it has not processed the request: the HTTP layer then
# re-sends at once on another connection, as browsers do. Set by aiohttp's tracing signals, which run in the
# requesting task, so the flag is the task's own.
CONNECTION_REUSED: ContextVar[bool] = ContextVar("cascadeflow_connection_reused", default=False)


async def _reused(session: Any, context: Any, params: Any) -> None:
    CONNECTION_REUSED.set(True)


async def _created(session: Any, context: Any, params: Any) -> None:
    CONNECTION_REUSED.set(False)


def _tracing() -> aiohttp.TraceConfig:
    trace = aiohttp.TraceConfig()
    trace.on_connection_reuseconn.append(_reused)
    trace.on_connection_create_end.append(_created)
    return trace


def _aiohttp_session() -> aiohttp.ClientSession:
    # limit=0: no pool-wide cap, the admission gates bound what is in flight per provider.
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEPALIVE_S),
                                 trace_configs=[_tracing()])


async def _finish(closing: Awaitable[Any]) -> None:
    await closing


def _retire(session: aiohttp.ClientSession, loop: asyncio.AbstractEventLoop) -> None:
    """Close a pooled session without its loop's help (the loop is closed, or belongs to another thread):
    its connections die with their loop, but aiohttp warns about a session or connector never closed."""
    if session.closed:
        return
    if loop.is_running() and loop is not _running_loop():
        try:
            asyncio.run_coroutine_threadsafe(session.close(), loop).result(timeout=2.0)
        except (TimeoutError, RuntimeError, OSError):
            session.detach()
        return
    connector = session.connector
    session.detach()
    if connector is not None:
        closing = connector.close()  # with its loop closed there is nothing left to wait for
        running = _running_loop()
        if running is not None:
            running.create_task(_finish(closing))
        else:
            asyncio.run(_finish(closing))


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class ClientPool:
    """One transport per event loop (a transport's connections belong to the loop that opened them); an
    injected transport (tests) serves every loop."""

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None):
        self._transport = transport
        self._transports: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncBaseTransport] = (
            weakref.WeakKeyDictionary())
        self._sessions: list[tuple[asyncio.AbstractEventLoop, aiohttp.ClientSession]] = []
        self._lock = threading.Lock()
        if transport is None:
            atexit.register(self.retire_all)

    def transport(self) -> httpx.AsyncBaseTransport:
        """The running loop's transport."""
        if self._transport is not None:
            return self._transport
        loop = asyncio.get_running_loop()
        found = self._transports.get(loop)
        if found is not None:
            return found
        with self._lock:
            # An idle connection references its loop, so the weak keys alone would not let go of transports
            # of closed loops: drop those here (the slow path runs once per new loop).
            for stale in [lp for lp in self._transports if lp.is_closed()]:
                del self._transports[stale]
            self._retire(lambda lp: lp.is_closed())
            found = self._transports[loop] = self._new_transport(loop)
            return found

    def _new_transport(self, loop: asyncio.AbstractEventLoop) -> AiohttpTransport:
        def session() -> aiohttp.ClientSession:  # called by the transport on its first request, in `loop`
            made = _aiohttp_session()
            with self._lock:
                self._sessions.append((loop, made))
            return made

        return AiohttpTransport(client=session)

    def _retire(self, which: Callable[[asyncio.AbstractEventLoop], bool]) -> None:
        keep = []
        for loop, session in self._sessions:
            if which(loop):
                _retire(session, loop)
            else:
                keep.append((loop, session))
        self._sessions = keep

    def retire_all(self) -> None:
        """Close every pooled session (at exit)."""
        with self._lock:
            self._retire(lambda lp: True)

    def __len__(self) -> int:
        return len(self._transports)


DEFAULT_POOL = ClientPool()
