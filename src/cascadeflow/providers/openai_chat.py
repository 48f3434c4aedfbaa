"""`OpenAIChat`: the adapter for every host speaking OpenAI Chat Completions (OpenAI, Groq, Together,
OpenRouter, DeepSeek, vLLM, Ollama's /v1, the Hugging Face router, any base_url)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from cascadeflow.messages import Request, Response, StreamDone, StreamEvent
from cascadeflow.providers import openai_wire as wire
from cascadeflow.providers.json_http import JsonHttpAdapter
from cascadeflow.providers.sse import sse_events
from cascadeflow.tokens import estimated_usage


class OpenAIChat(JsonHttpAdapter):
    """Chat Completions over HTTP: non-streaming and SSE streaming, tools, logprobs, usage, typed errors."""

    default_provider = "openai"
    wire = wire

    def _endpoint_url(self, base_url: str) -> str:
        return f"{base_url}/chat/completions"

    def _auth_headers(self, key: str) -> dict[str, str]:
        return {"authorization": f"Bearer {key}"}

    def _body(self, request: Request, *, stream: bool = False) -> dict[str, Any]:
        return wire.chat_body(request, provider=self.name, stream=stream)

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        started = time.perf_counter()
        body = self._body(request, stream=True)
        deadline = self._stream_deadline(request)
        state = wire.ChatStreamState()
        async with self._http.open_stream(self._url, body, self._headers, model=request.model,
                                          timeout=request.timeout, **self._admission(request)) as response:
            request_id = self._http.request_id(response.headers)
            async for event in sse_events(response.content.iter_any(), deadline=deadline, provider=self.name,
                                          model=request.model, max_bytes=self._http.options.max_response_bytes):
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
        chunk = self._json_object(data, request, "chunk")
        if chunk.get("error"):
            raise wire.stream_error(self._scrubbed(data), provider=self.name, model=request.model)
        return chunk

    def _assembled(self, state: wire.ChatStreamState, request: Request, request_id: str | None,
                   latency_ms: float) -> Response:
        text = "".join(state.text)
        calls = state.tool_calls()
        return Response(
            content=text,
            model=state.model or request.model,
            provider=self.name,
            usage=state.usage or estimated_usage(request, text, calls),
            tool_calls=calls,
            finish_reason=wire.finish_reason(state.raw_finish, bool(calls)),
            logprobs=tuple(state.logprobs) if state.logprobs is not None else None,
            latency_ms=latency_ms,
            request_id=request_id,
            raw_finish_reason=state.raw_finish,
        )

    def _parse(self, data: Any, request: Request, headers: Mapping[str, str], latency_ms: float) -> Response:
        request_id = self._request_id(data, headers)
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
            usage=wire.parse_usage(data.get("usage")) or estimated_usage(request, text, calls),
            tool_calls=calls,
            finish_reason=wire.finish_reason(raw_finish, bool(calls)),
            logprobs=logprobs,
            latency_ms=latency_ms,
            request_id=request_id,
            raw_finish_reason=raw_finish,
        )
