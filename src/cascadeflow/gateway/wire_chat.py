"""OpenAI Chat Completions as a client speaks it to the gateway: request bodies in, `chat.completion`
objects and `chat.completion.chunk` SSE streams out (usage in a final chunk when `stream_options` asks)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from cascadeflow.errors import InvalidRequestError
from cascadeflow.gateway.calls import (
    ClientCall,
    as_bool,
    optional_metadata,
    refuse_unknown,
    require_model,
    require_object,
)
from cascadeflow.messages import Response, StreamEvent, TextDelta, ToolCallDelta, Usage

# Options passed on to the model as given (the names `build_request` takes).
PASSED = ("temperature", "top_p", "stop", "tools", "tool_choice", "response_format", "logprobs", "top_logprobs",
          "seed", "presence_penalty", "frequency_penalty", "logit_bias", "parallel_tool_calls", "reasoning_effort",
          "service_tier")
KNOWN = frozenset({"model", "messages", "max_tokens", "max_completion_tokens", "stream", "stream_options", "n",
                   "metadata", "user", "store", *PASSED})
FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls", "content_filter": "content_filter"}


def _message(raw: Any, index: int) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise InvalidRequestError(f"messages[{index}] must be an object with 'role' and 'content'")
    message = dict(raw)
    if message.get("role") == "developer":  # the newer name of the system role
        message["role"] = "system"
    return message


def parse(body: Any) -> ClientCall:
    """A Chat Completions request body as a ClientCall."""
    body = require_object(body)
    refuse_unknown(body, KNOWN, "chat.completions")
    model = require_model(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequestError("'messages' must be a non-empty list")
    if body.get("n") not in (None, 1):
        raise InvalidRequestError("'n' must be 1: the gateway returns one choice per request")
    options = {name: body[name] for name in PASSED if body.get(name) is not None}
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None:
        options["max_tokens"] = max_tokens
    stream = as_bool(body.get("stream"), "stream")
    stream_options = body.get("stream_options") or {}
    if not isinstance(stream_options, Mapping):
        raise InvalidRequestError("'stream_options' must be an object")
    user = body.get("user")
    return ClientCall(model=model, messages=[_message(m, i) for i, m in enumerate(messages)], options=options,
                      metadata=optional_metadata(body.get("metadata")), user=user if isinstance(user, str) else None,
                      stream=stream, include_usage=stream and as_bool(stream_options.get("include_usage"),
                                                                      "stream_options.include_usage"))


def usage_object(usage: Usage) -> dict[str, Any]:
    return {"prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens},
            "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens}}


def _tool_calls(response: Response) -> list[dict[str, Any]]:
    return [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in response.tool_calls]


def completion(response: Response, *, request_id: str, model: str) -> dict[str, Any]:
    """The `chat.completion` object of an answer (`model`: the model that answered)."""
    message: dict[str, Any] = {"role": "assistant", "content": response.content or None, "refusal": None}
    if response.tool_calls:
        message["tool_calls"] = _tool_calls(response)
    return {"id": f"chatcmpl-{request_id}", "object": "chat.completion", "created": int(time.time()),
            "model": model, "system_fingerprint": None,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": FINISH.get(response.finish_reason, "stop")}],
            "usage": usage_object(response.usage)}


class ChatStream:
    """Encodes stream events as `chat.completion.chunk` SSE lines, ending with the finish chunk, the usage
    chunk when asked, and `[DONE]`."""

    def __init__(self, *, request_id: str, model: str, include_usage: bool):
        self.include_usage = include_usage
        self._head = {"id": f"chatcmpl-{request_id}", "object": "chat.completion.chunk", "created": int(time.time()),
                      "model": model, "system_fingerprint": None}
        self._started = False

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return b"data: " + orjson.dumps({**self._head, "choices": [
            {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}) + b"\n\n"

    def _role(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return self._chunk({"role": "assistant", "content": ""})

    def event(self, event: StreamEvent) -> bytes:
        if isinstance(event, TextDelta):
            return self._role() + self._chunk({"content": event.text})
        if isinstance(event, ToolCallDelta):
            call: dict[str, Any] = {"index": event.index, "function": {"arguments": event.arguments}}
            if event.id is not None or event.name is not None:
                call.update(id=event.id, type="function")
                call["function"]["name"] = event.name
            return self._role() + self._chunk({"tool_calls": [call]})
        return b""

    def done(self, response: Response) -> bytes:
        out = self._role() + self._chunk({}, FINISH.get(response.finish_reason, "stop"))
        if self.include_usage:
            out += b"data: " + orjson.dumps({**self._head, "choices": [], "usage": usage_object(response.usage)}) \
                + b"\n\n"
        return out + b"data: [DONE]\n\n"

    def error(self, body: Mapping[str, Any]) -> bytes:
        """An error after the stream began: OpenAI's in-stream error chunk."""
        return b"data: " + orjson.dumps(body) + b"\n\n"
