"""Wrapping SDK resource methods (sync, async, streaming) so each call goes through the bridge, and the
registry that patches them idempotently and restores the originals on reset.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from pydantic import BaseModel

from cascadeflow.harness.instrument.bridge import (
    RAW_RESPONSE_HEADER,
    DriveAsync,
    Handoff,
    PreparedCall,
    SdkAdapter,
    active_mode,
    answered_anyway,
    drive_sync,
    finish,
    from_cache,
    kwargs_for,
    parsed_result_async,
    passes_unobserved,
    pause,
    prepare,
    unreadable_answer,
)
from cascadeflow.harness.instrument.proxies import (
    AsyncLazyResponse,
    AsyncStreamProxy,
    StreamProxy,
    SyncLazyResponse,
    SyncStreamProxy,
)
from cascadeflow.harness.instrument.vendor import note_client, vendor_of
from cascadeflow.known_secrets import remember_secret
from cascadeflow.messages import Request, Response

log = logging.getLogger(__name__)

MARK = "__cascadeflow_original__"
_patched: list[tuple[type, str, Any]] = []  # (class, name, what its own __dict__ held: None when inherited)
_lock = threading.Lock()
# the streams opened while an SDK stream manager is being entered (see SettlingStreamManager)
_opening: ContextVar[list[StreamProxy] | None] = ContextVar("cascadeflow_opening_streams", default=None)


def reads_lazily(adapter: Any, kwargs: dict[str, Any]) -> bool:
    """A `with_streaming_response` call: the SDK returns the response before its body is read, and the
    caller reads it later (observed by a LazyResponse, for adapters that can price a body they are shown)."""
    headers = kwargs.get("extra_headers")
    if headers is None:  # the usual call: no isinstance() against the Mapping ABC on every call
        return False
    return (isinstance(headers, Mapping) and headers.get(RAW_RESPONSE_HEADER) == "stream"
            and hasattr(adapter, "body_response"))


def _sent_kwargs(adapter: Any, prepared: PreparedCall, request: Request, streaming: bool) -> dict[str, Any]:
    """The kwargs the SDK method is called with: the caller's own object in observe mode (kwargs_for); in
    enforce mode the policy's changes, and a stream asked for a usage chunk (noted on `prepared`). A stream
    whose raw body the caller reads (with_streaming_response) is not: the extra chunk could not be hidden."""
    sent = kwargs_for(adapter, prepared, request)
    if (streaming and prepared.mode == "enforce" and hasattr(adapter, "ask_stream_usage")
            and not reads_lazily(adapter, sent)):
        sent, prepared.injected_usage = adapter.ask_stream_usage(sent)
    return sent


def _returned(adapter: Any, prepared: PreparedCall, kwargs: dict[str, Any], coro: Any, out: Any,
              proxy: type[StreamProxy]) -> Any:
    """What the caller gets once the pipeline ran: the SDK's result, or its stream (or lazily read response)
    wrapped so that the paused pipeline settles and records when it ends."""
    if isinstance(out, Handoff) and reads_lazily(adapter, kwargs):
        pause(prepared, coro)
        lazy = SyncLazyResponse if proxy is SyncStreamProxy else AsyncLazyResponse
        return lazy(prepared.result, adapter=adapter, prepared=prepared, streaming=bool(kwargs.get("stream")),
                    stream_proxy=proxy)
    if isinstance(out, Handoff):
        pause(prepared, coro)
        stream = proxy(prepared.result, acc=adapter.accumulator(kwargs, prepared.injected_usage), prepared=prepared)
        opening = _opening.get()
        if opening is not None:
            opening.append(stream)
        return stream
    finish(prepared, *out)
    return prepared.result


def instrument_sync(adapter: SdkAdapter, original: Any) -> Any:
    """A sync resource method (`create`) that routes keyword calls through the pipeline."""

    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        mode = active_mode()
        if mode == "off" or args:
            return original(self, *args, **kwargs)
        streaming = bool(kwargs.get("stream"))
        paused = streaming or reads_lazily(adapter, kwargs)  # settled when the caller has read the body
        try:
            vendor = vendor_of(adapter.provider, self)
            prepared = prepare(adapter, kwargs, mode, vendor)
        except Exception as exc:
            if passes_unobserved(mode, exc, "preparing the call"):
                return original(self, **kwargs)
            raise
        if prepared is None:
            return original(self, **kwargs)
        cached = from_cache(adapter, prepared, original.__name__)
        if cached is not None:
            return cached
        prepared.call.external_send = "sync"

        async def invoke(request: Request) -> Response:
            sent = _sent_kwargs(adapter, prepared, request, streaming)
            prepared.sent = True
            prepared.result = original(self, **sent)
            prepared.answered = True
            if paused:
                return await Handoff()
            try:
                return adapter.to_response(prepared.result, request)
            except Exception as exc:  # ours: the pipeline charges it, the caller gets the result
                raise unreadable_answer(prepared.call, prepared.model, exc) from exc

        coro = prepared.runtime.attempt(prepared.model, prepared.view, prepared.call, invoke=invoke)
        try:
            out = drive_sync(coro)
        except BaseException as exc:
            if answered_anyway(prepared, exc):
                return prepared.result
            if not prepared.sent and passes_unobserved(mode, exc, "the pipeline before sending"):
                return original(self, **kwargs)
            finish(prepared, None, None, exc)
            raise
        return _returned(adapter, prepared, kwargs, coro, out, SyncStreamProxy)

    setattr(wrapper, MARK, original)
    return wrapper


def instrument_async(adapter: SdkAdapter, original: Any) -> Any:
    """An async resource method (`create`) that routes keyword calls through the pipeline."""

    @functools.wraps(original)
    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        mode = active_mode()
        if mode == "off" or args:
            return await original(self, *args, **kwargs)
        streaming = bool(kwargs.get("stream"))
        paused = streaming or reads_lazily(adapter, kwargs)  # settled when the caller has read the body
        try:
            vendor = vendor_of(adapter.provider, self)
            prepared = prepare(adapter, kwargs, mode, vendor)
        except Exception as exc:
            if passes_unobserved(mode, exc, "preparing the call"):
                return await original(self, **kwargs)
            raise
        if prepared is None:
            return await original(self, **kwargs)
        cached = from_cache(adapter, prepared, original.__name__, asynchronous=True)
        if cached is not None:
            return cached
        prepared.call.external_send = "async"

        async def invoke(request: Request) -> Response:
            sent = _sent_kwargs(adapter, prepared, request, streaming)
            prepared.sent = True
            prepared.result = await original(self, **sent)
            prepared.answered = True
            if paused:
                return await Handoff()
            result = prepared.result  # a model, or a raw response (whose parse() may be a coroutine)
            try:
                return adapter.to_response(result if isinstance(result, BaseModel) else
                                           await parsed_result_async(result), request)
            except Exception as exc:  # ours: the pipeline charges it, the caller gets the result
                raise unreadable_answer(prepared.call, prepared.model, exc) from exc

        coro = prepared.runtime.attempt(prepared.model, prepared.view, prepared.call, invoke=invoke)
        try:
            out = await DriveAsync(coro)
        except BaseException as exc:
            if answered_anyway(prepared, exc):
                return prepared.result
            if not prepared.sent and passes_unobserved(mode, exc, "the pipeline before sending"):
                return await original(self, **kwargs)
            finish(prepared, None, None, exc)
            raise
        return _returned(adapter, prepared, kwargs, coro, out, AsyncStreamProxy)

    setattr(wrapper, MARK, original)
    return wrapper


class SettlingStreamManager:
    """Stands in for an SDK stream manager whose `__enter__` calls the patched `create` (openai's
    `chat.completions.stream()` and `responses.stream()`): the stream opened there is settled when the
    manager exits. The SDK's own exit closes the HTTP response, not the stream object we handed it, so a
    caller leaving the block early would otherwise hold its reservation until the stream is collected."""

    def __init__(self, manager: Any):
        self._manager = manager
        self._opened: list[StreamProxy] = []

    def _settle(self) -> None:
        for stream in self._opened:
            stream._done(None)

    def __enter__(self) -> Any:
        token = _opening.set(self._opened)
        try:
            return self._manager.__enter__()
        finally:
            _opening.reset(token)

    def __exit__(self, *exc: object) -> Any:
        try:
            return self._manager.__exit__(*exc)
        finally:
            self._settle()

    async def __aenter__(self) -> Any:
        token = _opening.set(self._opened)
        try:
            return await self._manager.__aenter__()
        finally:
            _opening.reset(token)

    async def __aexit__(self, *exc: object) -> Any:
        try:
            return await self._manager.__aexit__(*exc)
        finally:
            self._settle()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._manager, name)


def instrument_stream_manager(original: Any) -> Any:
    """A `stream(...)` helper that builds its SDK manager as usual (its request goes through the patched
    `create` when the manager is entered) and returns it wrapped in a SettlingStreamManager."""

    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        manager = original(self, *args, **kwargs)
        return manager if active_mode() == "off" else SettlingStreamManager(manager)

    setattr(wrapper, MARK, original)
    return wrapper


def remembering_key(original: Any) -> Any:
    """An SDK client's `__init__` that also hands the client's key to the redaction (`remember_secret`), so an
    error echoing it is scrubbed from records and logs whatever the key looks like."""

    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        remember_secret(getattr(self, "api_key", None))

    setattr(wrapper, MARK, original)
    return wrapper


def noting_client(original: Any) -> Any:
    """An instrumented SDK resource class's constructor (`Completions(client)`: its one public argument is the
    client) that also notes which client the resource belongs to (`vendor.note_client`), so that a call on it
    knows, before it is sent, the host it goes to and the key it carries."""

    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        note_client(self, args[0] if args else kwargs.get("client"))

    setattr(wrapper, MARK, original)
    return wrapper


def patch(cls: type, name: str, make: Any, *, inherited: bool = False) -> None:
    """Replace `cls.name` with `make(original)` unless it is already ours. `inherited`: the original may come
    from a base class (the resources' constructors); the wrapper is then set on `cls` and removed on unpatch."""
    with _lock:
        own = cls.__dict__.get(name)
        current = getattr(cls, name, None) if own is None and inherited else own
        if current is None or hasattr(current, MARK):
            return
        setattr(cls, name, make(current))
        _patched.append((cls, name, own))


def unpatch_all() -> None:
    with _lock:
        while _patched:
            cls, name, original = _patched.pop()
            if original is None:  # the class inherited it: inheriting it again restores it
                delattr(cls, name)
            else:
                setattr(cls, name, original)


def patched_methods() -> list[str]:
    with _lock:
        return [f"{cls.__module__}.{cls.__qualname__}.{name}" for cls, name, _ in _patched]
