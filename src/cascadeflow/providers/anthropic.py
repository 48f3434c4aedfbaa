"""`AnthropicMessages`: the adapter for Anthropic's Messages API (plain and SSE streaming, tools, cache usage)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from cascadeflow.errors import MalformedResponseError, ProviderError
from cascadeflow.messages import Request, Response, StreamDone, StreamEvent
from cascadeflow.models import ModelConfig, Secret
from cascadeflow.providers import anthropic_wire as wire
from cascadeflow.providers.endpoint import redact, resolve_endpoint
from cascadeflow.providers.http import HttpCaller, HttpOptions, Timeouts
from cascadeflow.providers.sse import sse_events
from cascadeflow.runtime.sync import run_sync

log = logging.getLogger(__name__)


class AnthropicMessages:
    """Messages API over HTTP with `x-api-key` and `anthropic-version` headers."""

    def __init__(self, provider: str = "anthropic", *, base_url: str | None = None,
                 api_key: Secret | str | None = None, http: HttpOptions | None = None,
                 headers: Mapping[str, str] | None = None):
        endpoint = resolve_endpoint(provider, base_url=base_url, api_key=api_key)
        self.name = provider
        self.base_url = endpoint.base_url
        self._key = endpoint.api_key
        # The official SDK's base URL has no /v1 (ANTHROPIC_BASE_URL=https://api.anthropic.com); accept both.
        root = self.base_url.removesuffix("/v1")
        self._url = f"{root}/v1/messages"
        self._headers = {"content-type": "application/json", "accept": "application/json",
                         "anthropic-version": wire.API_VERSION, **(headers or {})}
        auth = (lambda key=self._key: {"x-api-key": key.get()}) if self._key is not None else None
        self._http = HttpCaller(provider, http or HttpOptions(), self._map_error, request_id_header="request-id",
                                auth=auth)

    @classmethod
    def from_config(cls, cfg: ModelConfig, http: HttpOptions | None = None) -> AnthropicMessages:
        if http is None and cfg.timeout is not None:
            http = HttpOptions(timeouts=Timeouts(total=cfg.timeout))
        return cls(cfg.provider or "anthropic", base_url=cfg.base_url, api_key=cfg.api_key, http=http,
                   headers=cfg.extra.get("headers"))

    def __repr__(self) -> str:
        return f"AnthropicMessages(provider={self.name!r}, base_url={self.base_url!r})"

    async def complete(self, request: Request) -> Response:
        started = time.perf_counter()
        body = wire.messages_body(request)
        return await self._http.post_json(
            self._url, body, self._headers, model=request.model, timeout=request.timeout,
            parse=lambda data, headers: self._parse(data, request, headers, (time.perf_counter() - started) * 1000))

    def complete_sync(self, request: Request) -> Response:
        return run_sync(self.complete(request), what="AnthropicMessages.complete_sync")

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        started = time.perf_counter()
        body = wire.messages_body(request, stream=True)
        deadline = time.monotonic() + (request.timeout or self._http.options.timeouts.total)
        state = wire.MessageStreamState()
        async with self._http.open_stream(self._url, body, self._headers, model=request.model,
                                          timeout=request.timeout) as response:
            request_id = self._http.request_id(response.headers)
            async for event in sse_events(response, deadline=deadline, provider=self.name, model=request.model):
                data = self._event_data(event.data, request)
                kind = event.event if event.event != "message" else str(data.get("type", ""))
                if kind == "error":
                    raise wire.stream_error(json.loads(redact(event.data, self._key)), provider=self.name,
                                            model=request.model)
                for delta in state.feed(kind, data):
                    yield delta
                if state.stopped:
                    break
        if not state.stopped:
            raise MalformedResponseError("the stream ended before message_stop", provider=self.name,
                                         model=request.model, request_id=request_id)
        yield StreamDone(self._assembled(state, request, request_id, (time.perf_counter() - started) * 1000))

    def _event_data(self, data: str, request: Request) -> Mapping[str, Any]:
        try:
            parsed = json.loads(data)
        except ValueError:
            raise MalformedResponseError(f"a stream event is not JSON: {data[:120]!r}", provider=self.name,
                                         model=request.model) from None
        if not isinstance(parsed, Mapping):
            raise MalformedResponseError("a stream event is not a JSON object", provider=self.name,
                                         model=request.model)
        return parsed

    def _assembled(self, state: wire.MessageStreamState, request: Request, request_id: str | None,
                   latency_ms: float) -> Response:
        return Response(
            content="".join(state.text),
            model=state.model or request.model,
            provider=self.name,
            usage=wire.parse_usage(state.usage_raw),
            tool_calls=state.tool_calls(),
            finish_reason=wire.stop_reason(state.raw_stop),
            logprobs=None,  # the Messages API offers no logprobs
            latency_ms=latency_ms,
            request_id=request_id or state.message_id,
            raw_finish_reason=state.raw_stop,
        )

    def _parse(self, data: Any, request: Request, headers: httpx.Headers, latency_ms: float) -> Response:
        request_id = self._http.request_id(headers) or (data.get("id") if isinstance(data, Mapping) else None)
        try:
            if data.get("type") == "error":
                raise wire.stream_error(data, provider=self.name, model=request.model)
            text, calls = wire.parse_content(data["content"])
            usage = wire.parse_usage(data.get("usage"))
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

    def _map_error(self, status: int, parsed: Any, raw: str, headers: httpx.Headers, request_id: str | None,
                   model: str) -> ProviderError:
        # Servers echo parts of what they received: scrub the key before any text reaches an error.
        raw = redact(raw, self._key)
        if parsed is not None:
            parsed = json.loads(redact(json.dumps(parsed), self._key))
        return wire.map_error(status, parsed, raw, headers, request_id, provider=self.name, model=model)
