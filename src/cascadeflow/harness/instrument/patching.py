"""Wrapping SDK resource methods (sync, async, streaming) so each call goes through the bridge, and the
registry that patches them idempotently and restores the originals on reset.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any, Self

from pydantic import BaseModel

from cascadeflow.errors import UnreadableAnswer
from cascadeflow.harness.instrument.bridge import (
    DriveAsync,
    Handoff,
    PreparedCall,
    SdkAdapter,
    StreamAccumulator,
    active_mode,
    complete_stream,
    drive_sync,
    finish,
    kwargs_for,
    observe_only,
    parsed_result_async,
    pause,
    prepare,
    release,
    settle_stream,
    unreadable_answer,
)
from cascadeflow.messages import Request, Response

log = logging.getLogger(__name__)

MARK = "__cascadeflow_original__"
_patched: list[tuple[type, str, Any]] = []
_lock = threading.Lock()
# the streams opened while an SDK stream manager is being entered (see SettlingStreamManager)
_opening: ContextVar[list[_StreamProxyBase] | None] = ContextVar("cascadeflow_opening_streams", default=None)


RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"  # the SDKs' marker of with_raw/with_streaming_response


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
              proxy: type[_StreamProxyBase]) -> Any:
    """What the caller gets once the pipeline ran: the SDK's result, or its stream (or lazily read response)
    wrapped so that the paused pipeline settles and records when it ends."""
    if isinstance(out, Handoff) and reads_lazily(adapter, kwargs):
        pause(prepared, coro)
        lazy = SyncLazyResponse if proxy is SyncStreamProxy else AsyncLazyResponse
        return lazy(prepared.result, adapter, prepared, bool(kwargs.get("stream")), proxy)
    if isinstance(out, Handoff):
        pause(prepared, coro)
        stream = proxy(prepared.result, adapter.accumulator(kwargs, prepared.injected_usage), prepared)
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
        observed = observe_only(adapter, kwargs) if mode == "observe" and not paused else None
        if observed is not None:
            return observed.call_sync(original, self, kwargs)
        prepared = prepare(adapter, kwargs, mode)
        if prepared is None:
            return original(self, **kwargs)

        async def invoke(request: Request) -> Response:
            prepared.result = original(self, **_sent_kwargs(adapter, prepared, request, streaming))
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
            finish(prepared, None, None, exc)
            if isinstance(exc, UnreadableAnswer):
                return prepared.result
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
        observed = observe_only(adapter, kwargs) if mode == "observe" and not paused else None
        if observed is not None:
            return await observed.call_async(original, self, kwargs)
        prepared = prepare(adapter, kwargs, mode)
        if prepared is None:
            return await original(self, **kwargs)

        async def invoke(request: Request) -> Response:
            prepared.result = await original(self, **_sent_kwargs(adapter, prepared, request, streaming))
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
            finish(prepared, None, None, exc)
            if isinstance(exc, UnreadableAnswer):
                return prepared.result
            raise
        return _returned(adapter, prepared, kwargs, coro, out, AsyncStreamProxy)

    setattr(wrapper, MARK, original)
    return wrapper


class _StreamProxyBase:
    def __init__(self, stream: Any, acc: StreamAccumulator, prepared: PreparedCall):
        self._stream = stream
        self._acc = acc
        self._prepared = prepared
        self._iter: Any = None
        self._unread = False  # the accumulator failed on an event: settled, the rest passes through unread

    def _done(self, error: BaseException | None) -> None:
        if self._prepared.coro is None:
            return
        if error is not None:
            complete_stream(self._prepared, None, error)
        else:
            settle_stream(self._prepared, lambda: self._acc.response(self._prepared.view))

    def _passed_on(self, event: Any) -> bool:
        """Whether the caller sees `event` (the accumulator's say). Once the accumulator has failed on an event
        (a shape it does not know), the call is settled as an unreadable answer and the rest passes through."""
        if self._unread:
            return True
        try:
            return self._acc.feed(event)
        except Exception as exc:  # noqa: BLE001 - ours, not the caller's
            self._unread = True
            if self._prepared.coro is not None:
                complete_stream(self._prepared, None, unreadable_answer(self._prepared.call, self._prepared.model,
                                                                        exc))
            return True

    def __del__(self) -> None:
        # a stream dropped unconsumed still settles (from what arrived) instead of holding its reservation
        # until the lease expires
        if getattr(self, "_prepared", None) is not None and self._prepared.coro is not None:
            try:
                self._done(None)
            except Exception:
                release(self._prepared)
                log.exception("cascadeflow: settling an abandoned stream failed")

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        """`with_raw_response` + `stream=True`: parse() gives the SDK stream; keep observing it. An async
        client's raw response may parse in a coroutine (anthropic): then so does this."""
        parsed = self._stream.parse(*args, **kwargs)
        if inspect.isawaitable(parsed):
            return self._parse_async(parsed)
        self._stream = parsed
        return self

    async def _parse_async(self, parsed: Any) -> Self:
        self._stream = await parsed
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class SyncStreamProxy(_StreamProxyBase):
    """The SDK's stream, observed: the pipeline settles and records when it ends or is closed."""

    def __iter__(self) -> SyncStreamProxy:
        return self

    def __next__(self) -> Any:
        if self._iter is None:
            self._iter = iter(self._stream)
        while True:
            try:
                event = next(self._iter)
            except StopIteration:
                self._done(None)
                raise
            except BaseException as exc:
                self._done(exc)
                raise
            if self._passed_on(event):
                return event

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._done(None)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncStreamProxy(_StreamProxyBase):
    """The SDK's async stream, observed like SyncStreamProxy."""

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        if self._iter is None:
            self._iter = self._stream.__aiter__()
        while True:
            try:
                event = await self._iter.__anext__()
            except StopAsyncIteration:
                self._done(None)
                raise
            except BaseException as exc:
                self._done(exc)
                raise
            if self._passed_on(event):
                return event

    async def close(self) -> None:
        try:
            await self._stream.close()
        finally:
            self._done(None)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class _LazyResponseBase:
    """The SDK's lazily read response (`with_streaming_response`), observed: every way the caller reads the
    body passes through unchanged while what it read is kept; the pipeline settles from that when the caller
    closes the response (the context manager's exit) or has read it all. `parse()` of a stream hands the
    SDK's stream back wrapped in the stream proxy, which settles from the events it passes on."""

    def __init__(self, response: Any, adapter: Any, prepared: PreparedCall, streaming: bool,
                 stream_proxy: type[_StreamProxyBase]):
        self._response = response
        self._adapter = adapter
        self._prepared = prepared
        self._streaming = streaming
        self._stream_proxy = stream_proxy
        self._stream: _StreamProxyBase | None = None  # handed out by parse() of a stream
        self._seen: list[bytes] = []  # the body as the caller iterated it

    def _body(self) -> bytes:
        try:
            return bytes(self._response.http_response.content)  # read whole by read()/parse()/text()/json()
        except Exception:  # noqa: BLE001 - httpx: not read (iterated, or not at all)
            return b"".join(self._seen)

    def _settle(self, error: BaseException | None = None) -> None:
        if self._prepared.coro is None:
            return
        if self._stream is not None:
            self._stream._done(error)
            return
        if error is not None:
            complete_stream(self._prepared, None, error)
        else:
            settle_stream(self._prepared, lambda: self._adapter.body_response(
                self._body(), self._streaming, self._prepared.view))

    def _wrap_stream(self, parsed: Any) -> Any:
        if not self._streaming or not hasattr(parsed, "response"):
            return parsed  # a model (settled below) or what the caller parsed a stream into
        if self._stream is None:
            acc = self._adapter.accumulator(self._prepared.kwargs, False)
            self._stream = self._stream_proxy(parsed, acc, self._prepared)
        return self._stream

    def _kept(self, chunk: Any) -> Any:
        self._seen.append(chunk if isinstance(chunk, bytes) else chunk.encode())
        return chunk

    def __del__(self) -> None:
        # a response dropped without being closed still settles from what was read
        if getattr(self, "_prepared", None) is not None and self._prepared.coro is not None:
            try:
                self._settle()
            except Exception:
                release(self._prepared)
                log.exception("cascadeflow: settling an abandoned response failed")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._response, name)


class SyncLazyResponse(_LazyResponseBase):
    def _read(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            out = method(*args, **kwargs)
        except BaseException as exc:
            self._settle(exc)
            raise
        if not self._streaming:
            self._settle()  # the body is read: settle now, not at close
        return out

    def parse(self, **kwargs: Any) -> Any:
        return self._wrap_stream(self._read(self._response.parse, **kwargs))

    def read(self) -> Any:
        return self._read(self._response.read)

    def text(self) -> Any:
        return self._read(self._response.text)

    def json(self) -> Any:
        return self._read(self._response.json)

    def _iterate(self, chunks: Iterator[Any], line_ends: bool = False) -> Iterator[Any]:
        try:
            for chunk in chunks:
                self._kept(chunk + "\n" if line_ends else chunk)
                yield chunk
        except GeneratorExit:
            raise  # the caller stopped early: settled at close from what it read
        except BaseException as exc:
            self._settle(exc)
            raise
        self._settle()

    def iter_bytes(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        return self._iterate(self._response.iter_bytes(*args, **kwargs))

    def iter_text(self, *args: Any, **kwargs: Any) -> Iterator[str]:
        return self._iterate(self._response.iter_text(*args, **kwargs))

    def iter_lines(self) -> Iterator[str]:
        return self._iterate(self._response.iter_lines(), line_ends=True)

    def close(self) -> None:
        try:
            self._response.close()
        finally:
            self._settle()


class AsyncLazyResponse(_LazyResponseBase):
    async def _read(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            out = await method(*args, **kwargs)
        except BaseException as exc:
            self._settle(exc)
            raise
        if not self._streaming:
            self._settle()
        return out

    async def parse(self, **kwargs: Any) -> Any:
        return self._wrap_stream(await self._read(self._response.parse, **kwargs))

    async def read(self) -> Any:
        return await self._read(self._response.read)

    async def text(self) -> Any:
        return await self._read(self._response.text)

    async def json(self) -> Any:
        return await self._read(self._response.json)

    async def _iterate(self, chunks: AsyncIterator[Any], line_ends: bool = False) -> AsyncIterator[Any]:
        try:
            async for chunk in chunks:
                self._kept(chunk + "\n" if line_ends else chunk)
                yield chunk
        except GeneratorExit:
            raise
        except BaseException as exc:
            self._settle(exc)
            raise
        self._settle()

    def iter_bytes(self, *args: Any, **kwargs: Any) -> AsyncIterator[bytes]:
        return self._iterate(self._response.iter_bytes(*args, **kwargs))

    def iter_text(self, *args: Any, **kwargs: Any) -> AsyncIterator[str]:
        return self._iterate(self._response.iter_text(*args, **kwargs))

    def iter_lines(self) -> AsyncIterator[str]:
        return self._iterate(self._response.iter_lines(), line_ends=True)

    async def close(self) -> None:
        try:
            await self._response.close()
        finally:
            self._settle()


class SettlingStreamManager:
    """Stands in for an SDK stream manager whose `__enter__` calls the patched `create` (openai's
    `chat.completions.stream()` and `responses.stream()`): the stream opened there is settled when the
    manager exits. The SDK's own exit closes the HTTP response, not the stream object we handed it, so a
    caller leaving the block early would otherwise hold its reservation until the stream is collected."""

    def __init__(self, manager: Any):
        self._manager = manager
        self._opened: list[_StreamProxyBase] = []

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


def patch(cls: type, name: str, make: Any) -> None:
    """Replace `cls.name` with `make(original)` unless it is already ours."""
    with _lock:
        current = cls.__dict__.get(name)
        if current is None or hasattr(current, MARK):
            return
        setattr(cls, name, make(current))
        _patched.append((cls, name, current))


def unpatch_all() -> None:
    with _lock:
        while _patched:
            cls, name, original = _patched.pop()
            setattr(cls, name, original)


def patched_methods() -> list[str]:
    with _lock:
        return [f"{cls.__module__}.{cls.__qualname__}.{name}" for cls, name, _ in _patched]
