"""The pooled HTTP clients: one `aiohttp.ClientSession` per (process, event loop), used directly.

aiohttp was chosen by measurement: under a storm of 1,000 concurrent calls httpx's own pool spent
milliseconds of CPU per call in its connection bookkeeping, aiohttp a fraction of one (docs/benchmarks.md).
`HttpCaller` calls the session itself, with no client library in front: an httpx layer over the same pool
(httpx-aiohttp) cost a request object, a response object and a byte-stream adapter per call for nothing an
API call uses. Redirects are not followed and the session keeps no cookies: an API call is a POST
authenticated by its key, and the pool is shared by every adapter of the process (other keys, other tenants
of a gateway), so a cookie one host set must not ride along on another caller's requests. The pool has no
limit of its own: the admission gates bound what is in flight per provider. Sessions are closed when their
event loop is gone (or at exit), so aiohttp has no unclosed session to warn about.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import aiohttp

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


def _new_session() -> aiohttp.ClientSession:
    # limit=0: no pool-wide cap, the admission gates bound what is in flight per provider.
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEPALIVE_S),
                                 cookie_jar=aiohttp.DummyCookieJar(), trace_configs=[_tracing()])


async def _finish(closing: Awaitable[Any]) -> None:
    await closing


def _retire(session: aiohttp.ClientSession, loop: asyncio.AbstractEventLoop) -> None:
    """Close a pooled session from outside its loop (the loop is closed, idle, or belongs to another
    thread): its connections die with their loop, but aiohttp warns about a session or connector never
    closed."""
    if session.closed:
        return
    if loop.is_running() and loop is not _running_loop():
        try:
            asyncio.run_coroutine_threadsafe(session.close(), loop).result(timeout=2.0)
        except (TimeoutError, RuntimeError, OSError):
            session.detach()
        return
    if not loop.is_running() and not loop.is_closed() and _running_loop() is None:
        # a loop left open but idle (a script's new_event_loop(), at exit): it can close its own session
        loop.run_until_complete(session.close())
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
    """One session per event loop: a session's connections belong to the loop that opened them."""

    def __init__(self) -> None:
        # Plain keys, not weak ones: a session references its loop, so a weak key would never let go anyway;
        # sessions of closed loops are retired when a new loop first asks for one (and at exit).
        self._sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}
        self._lock = threading.Lock()
        atexit.register(self.retire_all)

    def session(self) -> aiohttp.ClientSession:
        """The running loop's session (created on its first call in that loop)."""
        loop = asyncio.get_running_loop()
        found = self._sessions.get(loop)
        if found is not None:
            return found
        with self._lock:
            self._retire(lambda lp: lp.is_closed())  # the slow path runs once per new loop
            found = self._sessions[loop] = _new_session()
            return found

    def _retire(self, which: Callable[[asyncio.AbstractEventLoop], bool]) -> None:
        for loop in [lp for lp in self._sessions if which(lp)]:
            _retire(self._sessions.pop(loop), loop)

    def retire_all(self) -> None:
        """Close every pooled session (at exit)."""
        with self._lock:
            self._retire(lambda lp: True)

    def __len__(self) -> int:
        return len(self._sessions)


DEFAULT_POOL = ClientPool()
