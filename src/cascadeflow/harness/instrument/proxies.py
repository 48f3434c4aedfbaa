"""What the caller gets back from an instrumented SDK call that is read later: the SDK's stream, or its lazily
read response (`with_streaming_response`), observed. Everything the caller reads passes through unchanged;
the paused pipeline is settled and recorded from what was read when the stream ends or is closed, or the
response is read or closed (or either is collected)."""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Self

from cascadeflow.harness.instrument.bridge import (
    PreparedCall,
    StreamAccumulator,
    complete_stream,
    release,
    settle_stream,
    stream_cut_off,
    unreadable_answer,
)

log = logging.getLogger(__name__)


class StreamProxy:
    def __init__(self, stream: Any, *, acc: StreamAccumulator, prepared: PreparedCall):
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

    def _ended(self) -> None:
        """The SDK's iterator ended. Without the stream's final event the host (or something between) cut it
        off, though the SDK ends it like any other: recorded as a failure charged its worst case, since the
        usage of what was generated never arrived. The caller keeps every event that did arrive."""
        if self._prepared.coro is not None and not self._unread and not self._acc.complete:
            complete_stream(self._prepared, None, stream_cut_off(self._prepared))
        else:
            self._done(None)

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


class SyncStreamProxy(StreamProxy):
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
                self._ended()
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


class AsyncStreamProxy(StreamProxy):
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
                self._ended()
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

    def __init__(self, response: Any, *, adapter: Any, prepared: PreparedCall, streaming: bool,
                 stream_proxy: type[StreamProxy]):
        self._response = response
        self._adapter = adapter
        self._prepared = prepared
        self._streaming = streaming
        self._stream_proxy = stream_proxy
        self._stream: StreamProxy | None = None  # handed out by parse() of a stream
        self._seen: list[bytes] = []  # the body as the caller iterated it
        self._read_to_end = False  # the caller read the body to its end (not closed early)

    def _body(self) -> bytes:
        try:
            return bytes(self._response.http_response.content)  # read whole by read()/parse()/text()/json()
        except Exception:  # noqa: BLE001 - httpx: not read (iterated, or not at all)
            return b"".join(self._seen)

    def _settle(self, error: BaseException | None = None) -> None:
        """Settle from what the caller read. A body read to its end without its final event was cut off (by
        the host or something between), though the read ended normally: recorded as a failure charged its
        worst case. A body the caller stopped reading early is settled from what it read."""
        if self._prepared.coro is None:
            return
        if self._stream is not None:
            self._stream._done(error)
            return
        if error is not None:
            complete_stream(self._prepared, None, error)
            return
        try:
            response, whole = self._adapter.body_response(self._body(), self._streaming, self._prepared.view)
        except Exception as exc:  # noqa: BLE001 - ours, not the caller's
            complete_stream(self._prepared, None, unreadable_answer(self._prepared.call, self._prepared.model, exc))
            return
        if self._streaming and self._read_to_end and not whole:
            complete_stream(self._prepared, None, stream_cut_off(self._prepared))
        else:
            settle_stream(self._prepared, lambda: response)

    def _wrap_stream(self, parsed: Any) -> Any:
        if not self._streaming or not hasattr(parsed, "response"):
            return parsed  # a model (settled below) or what the caller parsed a stream into
        if self._stream is None:
            acc = self._adapter.accumulator(self._prepared.kwargs, False)
            self._stream = self._stream_proxy(parsed, acc=acc, prepared=self._prepared)
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
        self._read_to_end = method != self._response.parse  # read(), text(), json() read the body whole
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
        self._read_to_end = True
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
        self._read_to_end = method != self._response.parse  # read(), text(), json() read the body whole
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
        self._read_to_end = True
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
