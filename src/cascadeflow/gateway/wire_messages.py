"""Anthropic Messages as a client speaks it to the gateway: request bodies in (content blocks, tool use and
tool results, system), `message` objects and the Messages SSE event sequence out."""

from __future__ import annotations

import json
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

KNOWN = frozenset({"model", "messages", "max_tokens", "system", "tools", "tool_choice", "stop_sequences",
                   "temperature", "top_p", "top_k", "metadata", "stream"})
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}


def _text(blocks: Any, where: str) -> str:
    if isinstance(blocks, str):
        return blocks
    if not isinstance(blocks, list):
        raise InvalidRequestError(f"{where} must be a string or a list of content blocks")
    return "".join(b.get("text", "") for b in blocks if isinstance(b, Mapping) and b.get("type") == "text")


def _part(block: Mapping[str, Any], where: str) -> dict[str, Any]:
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": block.get("text")}
    if kind == "image":
        return {"type": "image", "source": block.get("source") or {}}
    raise InvalidRequestError(f"{where}: unsupported content block type {kind!r}")


def _turn(raw: Any, index: int) -> list[dict[str, Any]]:
    """One Anthropic turn as OpenAI-shaped messages: tool results become tool messages."""
    where = f"messages[{index}]"
    if not isinstance(raw, Mapping) or raw.get("role") not in ("user", "assistant"):
        raise InvalidRequestError(f"{where} must be an object with role 'user' or 'assistant'")
    role, content = raw["role"], raw.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if not isinstance(content, list) or not content:
        raise InvalidRequestError(f"{where}.content must be a string or a non-empty list of content blocks")
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for block in content:
        if not isinstance(block, Mapping):
            raise InvalidRequestError(f"{where}: a content block must be an object")
        kind = block.get("type")
        if kind == "tool_use":
            calls.append({"id": block.get("id"), "type": "function", "function": {
                "name": block.get("name"), "arguments": json.dumps(block.get("input") or {})}})
        elif kind == "tool_result":
            if not block.get("tool_use_id"):
                raise InvalidRequestError(f"{where}: a tool_result block needs 'tool_use_id'")
            results.append({"role": "tool", "tool_call_id": block["tool_use_id"],
                            "content": _text(block.get("content") or "", f"{where} tool_result content")})
        else:
            parts.append(_part(block, where))
    out = results  # tool results answer the previous assistant turn: they come first
    if parts or calls:
        message: dict[str, Any] = {"role": role, "content": parts or None}
        if calls:
            message["tool_calls"] = calls
        out.append(message)
    return out


def _tool_choice(raw: Any) -> Any:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise InvalidRequestError("'tool_choice' must be an object such as {\"type\": \"auto\"}")
    kind = raw.get("type")
    if kind == "tool":
        return {"type": "function", "function": {"name": raw.get("name")}}
    choices = {"auto": "auto", "any": "required", "none": "none"}
    if kind not in choices:
        raise InvalidRequestError(f"unsupported tool_choice type {kind!r}")
    return choices[kind]


def parse(body: Any) -> ClientCall:
    """A Messages request body as a ClientCall."""
    body = require_object(body)
    refuse_unknown(body, KNOWN, "messages")
    model = require_model(body)
    if body.get("max_tokens") is None:
        raise InvalidRequestError("'max_tokens' is required")
    turns = body.get("messages")
    if not isinstance(turns, list) or not turns:
        raise InvalidRequestError("'messages' must be a non-empty list")
    messages: list[dict[str, Any]] = []
    if body.get("system"):
        messages.append({"role": "system", "content": _text(body["system"], "'system'")})
    for index, turn in enumerate(turns):
        messages.extend(_turn(turn, index))
    options: dict[str, Any] = {"max_tokens": body["max_tokens"]}
    for name in ("temperature", "top_p", "top_k"):
        if body.get(name) is not None:
            options[name] = body[name]
    if body.get("stop_sequences"):
        options["stop"] = body["stop_sequences"]
    if body.get("tools"):
        options["tools"] = body["tools"]
    choice = _tool_choice(body.get("tool_choice"))
    if choice is not None:
        options["tool_choice"] = choice
    metadata = optional_metadata(body.get("metadata"))
    user = metadata.pop("user_id", None)
    return ClientCall(model=model, messages=messages, options=options, metadata=metadata,
                      user=user if isinstance(user, str) else None, stream=as_bool(body.get("stream"), "stream"))


def usage_object(usage: Usage) -> dict[str, int]:
    """Anthropic's usage: its input_tokens leaves out the cache reads and writes (ours include them)."""
    uncached = usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens
    return {"input_tokens": max(uncached, 0), "output_tokens": usage.output_tokens,
            "cache_creation_input_tokens": usage.cache_write_tokens,
            "cache_read_input_tokens": usage.cache_read_tokens}


def _input(arguments: str) -> Any:
    try:
        return json.loads(arguments or "{}")
    except ValueError:
        return {}  # the model produced invalid JSON; Anthropic's shape needs an object


def message(response: Response, *, request_id: str, model: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": response.content}] if response.content else []
    content += [{"type": "tool_use", "id": c.id, "name": c.name, "input": _input(c.arguments)}
                for c in response.tool_calls]
    return {"id": f"msg_{request_id}", "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": STOP_REASONS.get(response.finish_reason, "end_turn"), "stop_sequence": None,
            "usage": usage_object(response.usage)}


def sse(kind: str, data: Mapping[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **data}) + b"\n\n"


class MessagesStream:
    """Encodes stream events as the Messages event sequence: message_start, one content block per text run
    or tool call (start, deltas, stop), message_delta with the stop reason and the usage, message_stop."""

    def __init__(self, *, request_id: str, model: str):
        self._start: dict[str, Any] = {"id": f"msg_{request_id}", "type": "message", "role": "assistant", "model": model,
                       "content": [], "stop_reason": None, "stop_sequence": None,
                       "usage": {"input_tokens": 0, "output_tokens": 0}}
        self._started = False
        self._block = -1  # index of the open content block (-1: none)
        self._kind: str | None = None  # "text" | "tool_use"

    def _begin(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return sse("message_start", {"message": self._start})

    def _close(self) -> bytes:
        if self._kind is None:
            return b""
        self._kind = None
        return sse("content_block_stop", {"index": self._block})

    def _open(self, kind: str, block: dict[str, Any]) -> bytes:
        out = self._close()
        self._block += 1
        self._kind = kind
        return out + sse("content_block_start", {"index": self._block, "content_block": block})

    def event(self, event: StreamEvent) -> bytes:
        out = self._begin()
        if isinstance(event, TextDelta):
            if self._kind != "text":
                out += self._open("text", {"type": "text", "text": ""})
            return out + sse("content_block_delta", {"index": self._block,
                                                     "delta": {"type": "text_delta", "text": event.text}})
        if isinstance(event, ToolCallDelta):
            if event.id is not None or event.name is not None or self._kind != "tool_use":
                out += self._open("tool_use", {"type": "tool_use", "id": event.id or "", "name": event.name or "",
                                               "input": {}})
            if event.arguments:
                out += sse("content_block_delta", {"index": self._block, "delta": {
                    "type": "input_json_delta", "partial_json": event.arguments}})
        return out

    def done(self, response: Response) -> bytes:
        return (self._begin() + self._close()
                + sse("message_delta", {"delta": {"stop_reason": STOP_REASONS.get(response.finish_reason, "end_turn"),
                                                  "stop_sequence": None}, "usage": usage_object(response.usage)})
                + sse("message_stop", {}))

    def error(self, body: Mapping[str, Any]) -> bytes:
        """An error after the stream began: the Messages `error` event."""
        return b"event: error\ndata: " + orjson.dumps(body) + b"\n\n"
