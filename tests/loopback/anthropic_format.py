"""Renders a Reply in Anthropic's Messages wire format, plain and as the full SSE event sequence."""

from __future__ import annotations

import json
from typing import Any

from .openai_format import sse
from .script import Reply

STATUS_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
                529: "overloaded_error"}


def error_body(reply: Reply) -> dict[str, Any]:
    return {"type": "error", "error": {"type": reply.error_code or STATUS_TYPES.get(reply.status, "api_error"),
                                       "message": reply.error or f"loopback error {reply.status}"}}


def _input(spec: Any) -> Any:
    args = spec.get("arguments", {})
    return json.loads(args) if isinstance(args, str) else args


def _blocks(reply: Reply) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text else []
    for i, call in enumerate(reply.tool_calls):
        blocks.append({"type": "tool_use", "id": str(call.get("id") or f"toolu_{i}"), "name": call["name"],
                       "input": _input(call)})
    return blocks


def _usage(reply: Reply, request: Any) -> dict[str, int]:
    u = reply.usage_counts(request)
    # Anthropic's input_tokens excludes the cache tokens, reported separately.
    return {"input_tokens": u["input"], "output_tokens": u["output"],
            "cache_creation_input_tokens": u["cache_write"], "cache_read_input_tokens": u["cache_read"]}


def _stop(reply: Reply) -> str:
    return reply.finish_reason or ("tool_use" if reply.tool_calls else "end_turn")


def message(reply: Reply, request: Any) -> dict[str, Any]:
    return {"id": "msg_loopback", "type": "message", "role": "assistant",
            "model": reply.model or request.get("model", ""), "content": _blocks(reply),
            "stop_reason": _stop(reply), "stop_sequence": None, "usage": _usage(reply, request)}


def message_stream(reply: Reply, request: Any) -> list[bytes]:
    def ev(kind: str, **data: Any) -> bytes:
        return sse({"type": kind, **data}, event=kind)

    usage = _usage(reply, request)
    start = {**message(reply, request), "content": [], "stop_reason": None,
             "usage": {**usage, "output_tokens": 1}}
    events = [ev("message_start", message=start), ev("ping")]
    index = 0
    if reply.text:
        events.append(ev("content_block_start", index=0, content_block={"type": "text", "text": ""}))
        events += [ev("content_block_delta", index=0, delta={"type": "text_delta", "text": p})
                   for p in reply.pieces()]
        events.append(ev("content_block_stop", index=0))
        index = 1
    if reply.stream_error:
        events.append(ev("error", error={"type": reply.error_code or "overloaded_error",
                                         "message": reply.stream_error}))
        return events
    for i, block in enumerate(_blocks(reply)[index:]):
        at = index + i
        args = json.dumps(block["input"])
        half = len(args) // 2
        events.append(ev("content_block_start", index=at,
                         content_block={"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}))
        events += [ev("content_block_delta", index=at, delta={"type": "input_json_delta", "partial_json": part})
                   for part in (args[:half], args[half:])]
        events.append(ev("content_block_stop", index=at))
    events.append(ev("message_delta", delta={"stop_reason": _stop(reply), "stop_sequence": None},
                     usage={"output_tokens": usage["output_tokens"]}))
    events.append(ev("message_stop"))
    return events
