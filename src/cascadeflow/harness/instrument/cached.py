"""SDK results built from a stored answer (an instrumented call served from the response cache): a stream
replayed as the SDK's own event objects, and a raw response (`with_raw_response`) whose HTTP body is the
stored answer in the provider's wire format. The adapters build the SDK objects; this module hands them
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


class CachedRawResponse:
    """A served `with_raw_response` result: `http_response` (an httpx.Response with the stored body),
    `headers`, `status_code`, `content`, `text`, `json()`, and `parse()` returning what the plain call would
    have (the SDK's model, or its replayed stream)."""

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
    def content(self) -> bytes:
        return self.http_response.content

    @property
    def text(self) -> str:
        return self.http_response.text

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-request-id")

    def json(self) -> Any:
        return json.loads(self.content)

    def parse(self, **_: Any) -> Any:
        return self._parsed

    def read(self) -> bytes:
        return self.content

    def close(self) -> None:
        self.http_response.close()


class AsyncCachedRawResponse(CachedRawResponse):
    """CachedRawResponse for SDKs whose async raw response reads and parses in coroutines (anthropic)."""

    async def parse(self, **_: Any) -> Any:  # type: ignore[override]
        return self._parsed

    async def read(self) -> bytes:  # type: ignore[override]
        return self.content

    async def close(self) -> None:  # type: ignore[override]
        self.http_response.close()


def served_result(model: Any, events: Sequence[Any] | None, *, body: bytes, content_type: str, url: str,
                  request_id: str, raw: bool, asynchronous: bool, async_raw: bool) -> Any:
    """What a served call returns: the SDK's model, or (`events` given: a stream was asked for) its replayed
    stream, wrapped in a raw response when the call came through `with_raw_response`."""
    http = http_response(body, content_type, url, request_id)
    result: Any = model
    if events is not None:
        result = AsyncCachedStream(events, http) if asynchronous else CachedStream(events, http)
    if not raw:
        return result
    return AsyncCachedRawResponse(http, result) if async_raw else CachedRawResponse(http, result)
