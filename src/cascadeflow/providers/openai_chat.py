"""`OpenAIChat`: the adapter for every host speaking OpenAI Chat Completions (OpenAI, Groq, Together,
OpenRouter, DeepSeek, vLLM, Ollama's /v1, the Hugging Face router, any base_url)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from cascadeflow.errors import ProviderError
from cascadeflow.messages import Request, Response, StreamDone, StreamEvent
from cascadeflow.models import ModelConfig, Secret
from cascadeflow.providers import openai_wire as wire
from cascadeflow.providers.endpoint import redact, resolve_endpoint
from cascadeflow.providers.http import HttpCaller, HttpOptions, Timeouts
from cascadeflow.providers.sse import sse_events
from cascadeflow.runtime.sync import run_sync

log = logging.getLogger(__name__)


class OpenAIChat:
    """Chat Completions over HTTP: non-streaming and SSE streaming, tools, logprobs, usage, typed errors."""

    def __init__(self, provider: str = "openai", *, base_url: str | None = None,
                 api_key: Secret | str | None = None, http: HttpOptions | None = None,
                 headers: Mapping[str, str] | None = None):
        endpoint = resolve_endpoint(provider, base_url=base_url, api_key=api_key)
        self.name = provider
        self.base_url = endpoint.base_url
        self._key = endpoint.api_key
        self._url = f"{self.base_url}/chat/completions"
        self._headers = {"content-type": "application/json", "accept": "application/json", **(headers or {})}
        auth = (lambda key=self._key: {"authorization": f"Bearer {key.get()}"}) if self._key is not None else None
        self._http = HttpCaller(provider, http or HttpOptions(), self._map_error, auth=auth)

    @classmethod
    def from_config(cls, cfg: ModelConfig, http: HttpOptions | None = None) -> OpenAIChat:
        if http is None and cfg.timeout is not None:
            http = HttpOptions(timeouts=Timeouts(total=cfg.timeout))
        return cls(cfg.provider or "openai", base_url=cfg.base_url, api_key=cfg.api_key, http=http,
                   headers=cfg.extra.get("headers"))

    def __repr__(self) -> str:
        return f"OpenAIChat(provider={self.name!r}, base_url={self.base_url!r})"

    async def complete(self, request: Request) -> Response:
        started = time.perf_counter()
        body = wire.chat_body(request, provider=self.name)
        return await self._http.post_json(
            self._url, body, self._headers, model=request.model, timeout=request.timeout,
            parse=lambda data, headers: self._parse(data, request, headers, (time.perf_counter() - started) * 1000))

    def complete_sync(self, request: Request) -> Response:
        return run_sync(self.complete(request), what="OpenAIChat.complete_sync")

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        started = time.perf_counter()
        body = wire.chat_body(request, provider=self.name, stream=True)
        deadline = time.monotonic() + (request.timeout or self._http.options.timeouts.total)
        state = wire.ChatStreamState()
        async with self._http.open_stream(self._url, body, self._headers, model=request.model,
                                          timeout=request.timeout) as response:
            request_id = self._http.request_id(response.headers)
            async for event in sse_events(response, deadline=deadline, provider=self.name, model=request.model):
                if event.data.strip() == "[DONE]":
                    state.done = True
                    break
                for delta in state.feed(self._chunk(event.data, request)):
                    yield delta
        if not state.done:
            raise wire.malformed("the stream ended before [DONE]", provider=self.name, model=request.model,
                                 request_id=request_id)
        yield StreamDone(self._assembled(state, request, request_id, (time.perf_counter() - started) * 1000))

    def _chunk(self, data: str, request: Request) -> Mapping[str, Any]:
        try:
            chunk = json.loads(data)
        except ValueError:
            raise wire.malformed(f"a stream chunk is not JSON: {data[:120]!r}", provider=self.name,
                                 model=request.model) from None
        if not isinstance(chunk, Mapping):
            raise wire.malformed("a stream chunk is not a JSON object", provider=self.name, model=request.model)
        if chunk.get("error"):
            raise wire.stream_error(json.loads(redact(data, self._key)), provider=self.name, model=request.model)
        return chunk

    def _assembled(self, state: wire.ChatStreamState, request: Request, request_id: str | None,
                   latency_ms: float) -> Response:
        text = "".join(state.text)
        calls = state.tool_calls()
        return Response(
            content=text,
            model=state.model or request.model,
            provider=self.name,
            usage=state.usage or wire.estimated_usage(request, text, calls),
            tool_calls=calls,
            finish_reason=wire.finish_reason(state.raw_finish, bool(calls)),
            logprobs=tuple(state.logprobs) if state.logprobs is not None else None,
            latency_ms=latency_ms,
            request_id=request_id,
            raw_finish_reason=state.raw_finish,
        )

    def _parse(self, data: Any, request: Request, headers: httpx.Headers, latency_ms: float) -> Response:
        request_id = self._http.request_id(headers) or (data.get("id") if isinstance(data, Mapping) else None)
        try:
            choice = data["choices"][0]
            message = choice.get("message") or {}
            calls = wire.parse_tool_calls(message.get("tool_calls"))
            text = wire.message_text(message.get("content"))
            logprobs = wire.parse_logprobs(choice["logprobs"]) if choice.get("logprobs") else None
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
            raise wire.malformed(f"unexpected response shape ({type(exc).__name__}: {exc})", provider=self.name,
                                 model=request.model, request_id=request_id) from None
        raw_finish = choice.get("finish_reason")
        return Response(
            content=text,
            model=data.get("model") or request.model,
            provider=self.name,
            usage=wire.parse_usage(data.get("usage")) or wire.estimated_usage(request, text, calls),
            tool_calls=calls,
            finish_reason=wire.finish_reason(raw_finish, bool(calls)),
            logprobs=logprobs,
            latency_ms=latency_ms,
            request_id=request_id,
            raw_finish_reason=raw_finish,
        )

    def _map_error(self, status: int, parsed: Any, raw: str, headers: httpx.Headers, request_id: str | None,
                   model: str) -> ProviderError:
        # Servers echo parts of what they received (a mistyped key, a prompt): scrub the key first.
        raw = redact(raw, self._key)
        if parsed is not None:
            parsed = json.loads(redact(json.dumps(parsed), self._key))
        return wire.map_error(status, parsed, raw, headers, request_id, provider=self.name, model=model)
