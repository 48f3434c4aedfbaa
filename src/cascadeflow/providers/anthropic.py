"""`AnthropicMessages`: the adapter for Anthropic's Messages API (plain and SSE streaming, tools, cache usage)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

from cascadeflow.errors import MalformedResponseError
from cascadeflow.messages import Request, Response, StreamDone, StreamEvent
from cascadeflow.providers import anthropic_wire as wire
from cascadeflow.providers.json_http import JsonHttpAdapter
from cascadeflow.providers.sse import sse_events
from cascadeflow.tokens import estimated_usage


class AnthropicMessages(JsonHttpAdapter):
    """Messages API over HTTP with `x-api-key` and `anthropic-version` headers."""

    default_provider = "anthropic"
    wire = wire
    request_id_header = "request-id"
    api_headers: ClassVar[Mapping[str, str]] = {"anthropic-version": wire.API_VERSION}

    def _endpoint_url(self, base_url: str) -> str:
        # The official SDK's base URL has no /v1 (ANTHROPIC_BASE_URL=https://api.anthropic.com); accept both.
        return f"{base_url.removesuffix('/v1')}/v1/messages"

    def _auth_headers(self, key: str) -> dict[str, str]:
        return {"x-api-key": key}

    def _body(self, request: Request, *, stream: bool = False) -> dict[str, Any]:
        return wire.messages_body(request, stream=stream)

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        started = time.perf_counter()
        body = self._body(request, stream=True)
        deadline = self._stream_deadline(request)
        state = wire.MessageStreamState()
        async with self._http.open_stream(self._url, body, self._headers, model=request.model,
                                          timeout=request.timeout, **self._admission(request)) as response:
            request_id = self._http.request_id(response.headers)
            async for event in sse_events(response.content.iter_any(), deadline=deadline, provider=self.name,
                                          model=request.model, max_bytes=self._http.options.max_response_bytes):
                data = self._json_object(event.data, request, "event")
                kind = event.event if event.event != "message" else str(data.get("type", ""))
                if kind == "error":
                    raise wire.stream_error(self._scrubbed(event.data), provider=self.name, model=request.model)
                for delta in state.feed(kind, data):
                    yield delta
                if state.stopped:
                    break
        if not state.stopped:
            raise MalformedResponseError("the stream ended before message_stop", provider=self.name,
                                         model=request.model, request_id=request_id)
        yield StreamDone(self._assembled(state, request, request_id, (time.perf_counter() - started) * 1000))

    def _assembled(self, state: wire.MessageStreamState, request: Request, request_id: str | None,
                   latency_ms: float) -> Response:
        text, calls = "".join(state.text), state.tool_calls()
        return Response(
            content=text,
            model=state.model or request.model,
            provider=self.name,
            usage=wire.parse_usage(state.usage_raw) or estimated_usage(request, text, calls),
            tool_calls=calls,
            finish_reason=wire.stop_reason(state.raw_stop),
            logprobs=None,  # the Messages API offers no logprobs
            latency_ms=latency_ms,
            request_id=request_id or state.message_id,
            raw_finish_reason=state.raw_stop,
        )

    def _parse(self, data: Any, request: Request, headers: Mapping[str, str], latency_ms: float) -> Response:
        request_id = self._request_id(data, headers)
        try:
            if data.get("type") == "error":
                raise wire.stream_error(data, provider=self.name, model=request.model)
            text, calls = wire.parse_content(data["content"])
            usage = wire.parse_usage(data.get("usage")) or estimated_usage(request, text, calls)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise MalformedResponseError(f"unexpected response shape ({type(exc).__name__}: {exc})",
                                         provider=self.name, model=request.model, request_id=request_id) from None
        raw_stop = data.get("stop_reason")
        return Response(
            content=text,
            model=data.get("model") or request.model,
            provider=self.name,
            usage=usage,
            tool_calls=calls,
            finish_reason=wire.stop_reason(raw_stop),
            logprobs=None,
            latency_ms=latency_ms,
            request_id=request_id,
            raw_finish_reason=raw_stop,
        )
