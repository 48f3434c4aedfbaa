"""The Anthropic Messages wire format: request bodies, responses, stream events and error bodies (no I/O)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cascadeflow.errors import (
    ContentFilteredError,
    ContextWindowExceededError,
    InvalidRequestError,
    MalformedResponseError,
    ProviderError,
    RateLimitError,
    ServerError,
)
from cascadeflow.messages import (
    FinishReason,
    ImagePart,
    Message,
    Request,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from cascadeflow.providers.http import status_error

log = logging.getLogger(__name__)

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096  # the Messages API requires max_tokens; used when the request sets none
STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
    "refusal": "content_filter", "model_context_window_exceeded": "length",
}
_CONTEXT_PHRASES = ("prompt is too long", "context window", "context length", "too many tokens")


def _image_block(part: ImagePart) -> dict[str, Any]:
    if part.url.startswith("data:"):
        header, _, data = part.url.partition(",")
        media_type = part.media_type or header[5:].split(";")[0]
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": part.url}}


def _content_blocks(message: Message) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if isinstance(message.content, str):
        if message.content:
            blocks.append({"type": "text", "text": message.content})
    elif message.content:
        for part in message.content:
            blocks.append(_image_block(part) if isinstance(part, ImagePart) else {"type": "text", "text": part.text})
    for call in message.tool_calls:
        try:
            arguments = call.parsed_arguments()
        except ValueError:
            raise InvalidRequestError(f"tool call {call.id!r}: arguments are not valid JSON") from None
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": arguments})
    return blocks


def _turns(messages: tuple[Message, ...]) -> tuple[list[dict[str, Any]], list[str]]:
    """(Anthropic turns, system texts). Tool results become user turns; adjacent same-role turns merge."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            system.append(m.text)
            continue
        if m.role == "tool":
            role = "user"
            blocks = [{"type": "tool_result", "tool_use_id": m.tool_call_id or "", "content": m.text}]
        else:
            role, blocks = m.role, _content_blocks(m)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return turns, system


def _tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        return {"auto": {"type": "auto"}, "required": {"type": "any"}, "any": {"type": "any"},
                "none": {"type": "none"}}.get(choice) or {"type": "tool", "name": choice}
    if choice.get("type") == "function":  # OpenAI shape
        return {"type": "tool", "name": choice["function"]["name"]}
    return dict(choice)


def messages_body(request: Request, *, stream: bool = False) -> dict[str, Any]:
    """The JSON body for POST /v1/messages."""
    turns, system = _turns(request.messages)
    body: dict[str, Any] = {"model": request.model, "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
                            "messages": turns}
    if system:
        body["system"] = "\n\n".join(system)
    for name in ("temperature", "top_p"):
        if getattr(request, name) is not None:
            body[name] = getattr(request, name)
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    if request.tools:
        body["tools"] = [{"name": t.name, "description": t.description, "input_schema": dict(t.parameters)}
                         for t in request.tools]
    choice = _tool_choice(request.tool_choice)
    if choice is not None:
        body["tool_choice"] = choice
    if request.response_format is not None:
        log.debug("the Messages API has no response_format; left out for %s", request.model)
    if stream:
        body["stream"] = True
    body.update(request.extra)
    return body


def parse_usage(raw: Mapping[str, Any] | None) -> Usage | None:
    """The reported usage, or None when the answer carries no token counts (the adapter then estimates)."""
    if not isinstance(raw, Mapping) or (raw.get("input_tokens") is None and raw.get("output_tokens") is None):
        return None
    cache_write = int(raw.get("cache_creation_input_tokens") or 0)
    cache_read = int(raw.get("cache_read_input_tokens") or 0)
    # Anthropic's input_tokens excludes cache tokens; ours includes them.
    return Usage(input_tokens=int(raw.get("input_tokens") or 0) + cache_write + cache_read,
                 output_tokens=int(raw.get("output_tokens") or 0),
                 cache_read_tokens=cache_read, cache_write_tokens=cache_write)


def stop_reason(raw: str | None) -> FinishReason:
    return STOP_REASONS.get(raw or "", "unknown")


def parse_content(blocks: Any) -> tuple[str, tuple[ToolCall, ...]]:
    text, calls = [], []
    for block in blocks or ():
        if block.get("type") == "text":
            text.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            calls.append(ToolCall(id=block["id"], name=block["name"], arguments=json.dumps(block.get("input") or {})))
    return "".join(text), tuple(calls)


@dataclass(slots=True)
class MessageStreamState:
    """Accumulates the Messages SSE events into the final answer."""

    text: list[str] = field(default_factory=list)
    blocks: dict[int, dict[str, Any]] = field(default_factory=dict)  # content index -> tool_use being built
    usage_raw: dict[str, Any] = field(default_factory=dict)
    raw_stop: str | None = None
    model: str | None = None
    message_id: str | None = None
    stopped: bool = False

    def feed(self, kind: str, data: Mapping[str, Any]) -> list[Any]:
        """Absorb one event; return the TextDelta/ToolCallDelta it carried."""
        if kind == "message_start":
            message = data.get("message") or {}
            self.model, self.message_id = message.get("model"), message.get("id")
            self.usage_raw.update(message.get("usage") or {})
        elif kind == "content_block_start":
            block = data.get("content_block") or {}
            if block.get("type") == "tool_use":
                slot = {"id": block.get("id", ""), "name": block.get("name", ""), "json": [],
                        "position": len(self.blocks)}
                self.blocks[int(data.get("index", 0))] = slot
                return [ToolCallDelta(index=slot["position"], id=slot["id"], name=slot["name"])]
            if block.get("type") == "text" and block.get("text"):
                self.text.append(block["text"])
                return [TextDelta(block["text"])]
        elif kind == "content_block_delta":
            return self._delta(int(data.get("index", 0)), data.get("delta") or {})
        elif kind == "message_delta":
            self.raw_stop = (data.get("delta") or {}).get("stop_reason") or self.raw_stop
            # message_delta usage is cumulative: it overrides what message_start said.
            self.usage_raw.update({k: v for k, v in (data.get("usage") or {}).items() if v is not None})
        elif kind == "message_stop":
            self.stopped = True
        return []

    def _delta(self, index: int, delta: Mapping[str, Any]) -> list[Any]:
        if delta.get("type") == "text_delta":
            self.text.append(delta.get("text", ""))
            return [TextDelta(delta.get("text", ""))]
        if delta.get("type") == "input_json_delta" and index in self.blocks:
            slot = self.blocks[index]
            slot["json"].append(delta.get("partial_json", ""))
            return [ToolCallDelta(index=slot["position"], arguments=delta.get("partial_json", ""))]
        return []  # thinking / signature deltas carry no answer text

    def tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(ToolCall(id=s["id"], name=s["name"], arguments="".join(s["json"]) or "{}")
                     for _, s in sorted(self.blocks.items()))


def error_message(parsed: Any, raw: str) -> tuple[str, str]:
    err = parsed.get("error") if isinstance(parsed, Mapping) else None
    if isinstance(err, Mapping):
        return str(err.get("message") or err.get("type") or "no message"), str(err.get("type") or "")
    return (raw.strip()[:300] or "empty body"), ""


def map_error(status: int, parsed: Any, raw: str, headers: Mapping[str, str], request_id: str | None, *,
              provider: str, model: str) -> ProviderError:
    message, kind = error_message(parsed, raw)
    kw: dict[str, Any] = {"provider": provider, "model": model, "status_code": status, "request_id": request_id}
    if status in (400, 413) and any(p in message.lower() for p in _CONTEXT_PHRASES):
        return ContextWindowExceededError(f"prompt and max_tokens do not fit the context window: {message}", **kw)
    if status == 400 and "content" in kind and "filter" in kind:
        return ContentFilteredError(f"refused on content grounds: {message}", **kw)
    return status_error(status, message, headers, provider=provider, model=model, request_id=request_id)


def stream_error(data: Mapping[str, Any], *, provider: str, model: str) -> ProviderError:
    """The error of an `event: error` in the stream (e.g. overloaded_error after the stream began)."""
    message, kind = error_message(data, "")
    kw: dict[str, Any] = {"provider": provider, "model": model}
    if kind == "rate_limit_error":
        return RateLimitError(f"rate limited mid-stream: {message}", **kw)
    if kind in ("overloaded_error", "api_error"):
        return ServerError(f"{kind} mid-stream: {message}", **kw)
    if kind == "invalid_request_error":
        return map_error(400, data, "", {}, None, provider=provider, model=model)
    return MalformedResponseError(f"stream error {kind or 'unknown'}: {message}", **kw)
