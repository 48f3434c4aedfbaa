"""The OpenAI Chat Completions wire format: request bodies, responses, stream chunks and error bodies.

Pure functions without I/O, shared by the `OpenAIChat` adapter and anything else that speaks this format.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cascadeflow.errors import (
    ContentFilteredError,
    ContextWindowExceededError,
    MalformedResponseError,
    ProviderError,
)
from cascadeflow.messages import FinishReason, Request, TokenLogprob, ToolCall, ToolCallDelta, Usage
from cascadeflow.providers.http import status_error

FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop", "length": "length", "tool_calls": "tool_calls", "function_call": "tool_calls",
    "content_filter": "content_filter", "eos": "stop", "end_turn": "stop",
}
_CONTEXT_CODES = ("context_length_exceeded", "string_above_max_length")
_CONTEXT_PHRASES = ("maximum context length", "context length", "context window", "too many tokens")
_FILTER_CODES = ("content_filter", "content_policy_violation")


def chat_body(request: Request, *, provider: str, stream: bool = False) -> dict[str, Any]:
    """The JSON body for POST /chat/completions."""
    body: dict[str, Any] = {"model": request.model, "messages": [m.to_dict() for m in request.messages]}
    if request.max_tokens is not None:
        # OpenAI's reasoning models accept only max_completion_tokens; compatible hosts expect max_tokens.
        body["max_completion_tokens" if provider == "openai" else "max_tokens"] = request.max_tokens
    for name in ("temperature", "top_p", "response_format"):
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    if request.stop:
        body["stop"] = list(request.stop)
    if request.tools:
        body["tools"] = [{"type": "function", "function": {"name": t.name, "description": t.description,
                                                           "parameters": dict(t.parameters)}}
                         for t in request.tools]
    if request.tool_choice is not None:
        body["tool_choice"] = request.tool_choice
    if request.logprobs:
        body["logprobs"] = True
        if request.top_logprobs is not None:
            body["top_logprobs"] = request.top_logprobs
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    body.update(request.extra)
    return body


def parse_usage(raw: Mapping[str, Any] | None) -> Usage | None:
    if not isinstance(raw, Mapping):
        return None
    prompt = raw.get("prompt_tokens_details") or {}
    completion = raw.get("completion_tokens_details") or {}
    return Usage(
        input_tokens=int(raw.get("prompt_tokens") or 0),  # includes cached tokens
        output_tokens=int(raw.get("completion_tokens") or 0),
        cache_read_tokens=int(prompt.get("cached_tokens") or 0),
        reasoning_tokens=int(completion.get("reasoning_tokens") or 0),
    )


def parse_logprobs(raw: Any) -> tuple[TokenLogprob, ...]:
    content = raw.get("content") if isinstance(raw, Mapping) else None
    out = []
    for item in content or ():
        top = tuple((t["token"], float(t["logprob"])) for t in item.get("top_logprobs") or ())
        out.append(TokenLogprob(item["token"], float(item["logprob"]), top))
    return tuple(out)


def parse_tool_calls(raw: Any) -> tuple[ToolCall, ...]:
    calls = []
    for c in raw or ():
        fn = c.get("function") or {}
        args = fn.get("arguments")
        calls.append(ToolCall(id=str(c.get("id") or ""), name=str(fn.get("name") or ""),
                              arguments=args if isinstance(args, str) else json.dumps(args or {})))
    return tuple(calls)


def message_text(content: Any) -> str:
    """Message content as text: a string, or the text parts of a list (some hosts return parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if isinstance(p, Mapping))


def finish_reason(raw: str | None, has_tool_calls: bool) -> FinishReason:
    if raw is None:
        return "tool_calls" if has_tool_calls else "unknown"
    return FINISH_REASONS.get(raw, "unknown")


@dataclass(slots=True)
class ChatStreamState:
    """Accumulates stream chunks into the final answer (text, tool calls, logprobs, usage)."""

    text: list[str] = field(default_factory=list)
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    logprobs: list[TokenLogprob] | None = None
    usage: Usage | None = None
    raw_finish: str | None = None
    model: str | None = None
    done: bool = False

    def feed(self, chunk: Mapping[str, Any]) -> list[Any]:
        """Absorb one chunk; return the TextDelta/ToolCallDelta payloads it carried as (kind, value) pairs."""
        from cascadeflow.messages import TextDelta

        events: list[Any] = []
        self.model = chunk.get("model") or self.model
        usage = parse_usage(chunk.get("usage") or (chunk.get("x_groq") or {}).get("usage"))
        if usage is not None:
            self.usage = usage
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            piece = message_text(delta.get("content"))
            if piece:
                self.text.append(piece)
                events.append(TextDelta(piece))
            for tc in delta.get("tool_calls") or ():
                events.append(self._tool_delta(tc))
            if choice.get("logprobs"):
                self.logprobs = (self.logprobs or []) + list(parse_logprobs(choice["logprobs"]))
            if choice.get("finish_reason"):
                self.raw_finish = choice["finish_reason"]
        return events

    def _tool_delta(self, tc: Mapping[str, Any]) -> ToolCallDelta:
        index = int(tc.get("index", 0))
        slot = self.calls.setdefault(index, {"id": "", "name": "", "arguments": []})
        fn = tc.get("function") or {}
        if tc.get("id"):
            slot["id"] = tc["id"]
        if fn.get("name"):
            slot["name"] = fn["name"]
        args = fn.get("arguments") or ""
        slot["arguments"].append(args)
        return ToolCallDelta(index=index, id=tc.get("id"), name=fn.get("name"), arguments=args)

    def tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(ToolCall(id=s["id"], name=s["name"], arguments="".join(s["arguments"]) or "{}")
                     for _, s in sorted(self.calls.items()))


def error_message(parsed: Any, raw: str) -> tuple[str, str]:
    """(message, code) from an OpenAI-style error body; falls back to the raw text."""
    err = parsed.get("error") if isinstance(parsed, Mapping) else None
    if isinstance(err, Mapping):
        code = str(err.get("code") or err.get("type") or "")
        return str(err.get("message") or code or "no message"), code
    if isinstance(err, str):
        return err, ""
    return (raw.strip()[:300] or "empty body"), ""


def map_error(status: int, parsed: Any, raw: str, headers: Mapping[str, str], request_id: str | None, *,
              provider: str, model: str) -> ProviderError:
    """The typed error for an OpenAI-compatible error response."""
    message, code = error_message(parsed, raw)
    kw: dict[str, Any] = {"provider": provider, "model": model, "status_code": status, "request_id": request_id}
    lowered = message.lower()
    if status == 400 and (code in _CONTEXT_CODES or any(p in lowered for p in _CONTEXT_PHRASES)):
        return ContextWindowExceededError(f"prompt and max_tokens do not fit the context window: {message}", **kw)
    if status == 400 and code in _FILTER_CODES:
        return ContentFilteredError(f"refused by the content policy: {message}", **kw)
    return status_error(status, message, headers, provider=provider, model=model, request_id=request_id)


def stream_error(payload: Mapping[str, Any], *, provider: str, model: str) -> ProviderError:
    """The error carried inside a stream (`data: {"error": ...}`)."""
    _message, code = error_message(payload, "")
    status = 400 if code in _CONTEXT_CODES or code in _FILTER_CODES else 500
    return map_error(status, payload, "", {}, None, provider=provider, model=model)


def malformed(message: str, *, provider: str, model: str, request_id: str | None = None) -> MalformedResponseError:
    return MalformedResponseError(message, provider=provider, model=model, request_id=request_id)
