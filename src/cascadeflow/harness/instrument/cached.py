"""SDK results built from a stored answer (an instrumented call served from the response cache): a stream
replayed as the SDK's own event objects, and a raw response (`with_raw_response`, `with_streaming_response`)
whose HTTP body is the stored answer in the provider's wire format. The adapters build the SDK objects; this module hands them
over the way the SDK would (iteration, `close()`, context managers, `parse()`, headers and body).

Why not the SDKs' own `Stream` / `APIResponse` classes: their constructors take the client's private state
(the client object, request options), so a stored answer cannot be wrapped in them through a public API. These
classes offer the same public surface the SDKs document for those objects instead.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, Self

import httpx

SSE_TYPE = "text/event-stream"
JSON_TYPE = "application/json"


def sse_body(events: Sequence[Any], *, named: bool, done: bool) -> bytes:
    """The server-sent-event body that carries `events` (pydantic models): `event:` lines when the wire
    format names its events (Anthropic), a closing `[DONE]` when it has one (OpenAI chat)."""
    lines: list[str] = []
    for event in events:
        if named:
            lines.append(f"event: {event.type}")
        lines.append(f"data: {event.model_dump_json(exclude_unset=True)}")
        lines.append("")
    if done:
        lines += ["data: [DONE]", ""]
    return ("\n".join(lines) + "\n").encode("utf-8")


def http_response(body: bytes, content_type: str, url: str, request_id: str) -> httpx.Response:
    """The HTTP response a served call stands on: status 200, the stored answer as its body, and a header
    saying that it came from the cache (`x-cascadeflow-cache: hit`)."""
    return httpx.Response(200, content=body, request=httpx.Request("POST", url),
                          headers={"content-type": content_type, "x-cascadeflow-cache": "hit",
                                   "x-request-id": request_id, "request-id": request_id})


class CachedStream:
    """A stored answer replayed as the SDK's stream (`for event in stream`, `with stream`, `close()`,
    `response`): the events are the SDK's own classes, the last one carrying the usage."""

    def __init__(self, events: Sequence[Any], response: httpx.Response):
        self._events = iter(list(events))
        self.response = response

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        return next(self._events)

    def close(self) -> None:
        self._events = iter(())

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncCachedStream:
    """CachedStream for an async client (`async for event in stream`, `async with stream`)."""

    def __init__(self, events: Sequence[Any], response: httpx.Response):
        self._events = iter(list(events))
        self.response = response

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        try:
            return next(self._events)
        except StopIteration:
            raise StopAsyncIteration from None

    async def close(self) -> None:
        self._events = iter(())

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class _CachedHttp:
    """What every raw response of the SDKs exposes about its HTTP exchange."""

    def __init__(self, http: httpx.Response, parsed: Any):
        self.http_response = http
        self._parsed = parsed
        self.retries_taken = 0

    @property
    def headers(self) -> httpx.Headers:
        return self.http_response.headers

    @property
    def status_code(self) -> int:
        return self.http_response.status_code

    @property
    def url(self) -> httpx.URL:
        return self.http_response.url

    @property
    def method(self) -> str:
        return self.http_response.request.method

    @property
    def http_request(self) -> httpx.Request:
        return self.http_response.request

    @property
    def is_closed(self) -> bool:
        return self.http_response.is_closed

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-request-id")


class CachedLegacyResponse(_CachedHttp):
    """A served result of openai's `with_raw_response` (its LegacyAPIResponse): `content` and `text` are
    properties, `json()` and `parse()` methods."""

    @property
    def content(self) -> bytes:
        return self.http_response.content

    @property
    def text(self) -> str:
        return self.http_response.text

    def json(self) -> Any:
        return json.loads(self.content)

    def parse(self, **_: Any) -> Any:
        return self._parsed


class CachedAPIResponse(_CachedHttp):
    """A served result of anthropic's `with_raw_response` or either SDK's `with_streaming_response` (their
    APIResponse): `read()`, `text()`, `json()`, `parse()`, `iter_bytes()` / `iter_text()` / `iter_lines()`,
    `close()`."""

    def parse(self, **_: Any) -> Any:
        return self._parsed

    def read(self) -> bytes:
        return self.http_response.content

    def text(self) -> str:
        return self.http_response.text

    def json(self) -> Any:
        return json.loads(self.http_response.content)

    def iter_bytes(self, chunk_size: int | None = None) -> Iterator[bytes]:
        return self.http_response.iter_bytes(chunk_size)

    def iter_text(self, chunk_size: int | None = None) -> Iterator[str]:
        return self.http_response.iter_text(chunk_size)

    def iter_lines(self) -> Iterator[str]:
        return self.http_response.iter_lines()

    def close(self) -> None:
        self.http_response.close()


class AsyncCachedAPIResponse(_CachedHttp):
    """CachedAPIResponse for an async client: the same methods, as coroutines and async iterators."""

    async def parse(self, **_: Any) -> Any:
        return self._parsed

    async def read(self) -> bytes:
        return self.http_response.content

    async def text(self) -> str:
        return self.http_response.text

    async def json(self) -> Any:
        return json.loads(self.http_response.content)

    async def iter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        for chunk in self.http_response.iter_bytes(chunk_size):
            yield chunk

    async def iter_text(self, chunk_size: int | None = None) -> AsyncIterator[str]:
        for chunk in self.http_response.iter_text(chunk_size):
            yield chunk

    async def iter_lines(self) -> AsyncIterator[str]:
        for line in self.http_response.iter_lines():
            yield line

    async def close(self) -> None:
        self.http_response.close()


def served_result(model: Any, events: Sequence[Any] | None, *, url: str, request_id: str, raw: str | None,
                  asynchronous: bool, legacy_raw: bool, named_events: bool = False, done: bool = False) -> Any:
    """What a served call returns: the SDK's model, or (`events` given: a stream was asked for) its replayed
    stream; wrapped in a raw response when the call came through `with_raw_response` (`raw="raw"`: openai's
    legacy shape when `legacy_raw`) or `with_streaming_response` (`raw="stream"`). The HTTP body (JSON, or
    the events as server-sent events: `named_events`, a closing `done`) is only built for those."""
    if events is None and raw is None:
        return model  # the usual hit: no HTTP response to stand on
    if events is not None:
        body, content_type = sse_body(events, named=named_events, done=done), SSE_TYPE
    else:
        body, content_type = model.model_dump_json().encode("utf-8"), JSON_TYPE
    http = http_response(body, content_type, url, request_id)
    result: Any = model
    if events is not None:
        result = AsyncCachedStream(events, http) if asynchronous else CachedStream(events, http)
    if raw is None:
        return result
    if raw == "raw" and legacy_raw:
        return CachedLegacyResponse(http, result)
    return AsyncCachedAPIResponse(http, result) if asynchronous else CachedAPIResponse(http, result)
