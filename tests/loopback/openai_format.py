"""Renders a Reply in OpenAI's wire formats: Chat Completions and the Responses API, plain and SSE."""

from __future__ import annotations

import json
import time
from typing import Any

from .script import Reply

STATUS_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "permission_denied",
                404: "not_found", 429: "rate_limit_exceeded", 500: "server_error", 503: "server_error"}


def sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    payload = data if isinstance(data, str) else json.dumps(data)
    return f"{head}data: {payload}\n\n".encode()


def error_body(reply: Reply) -> dict[str, Any]:
    return {"error": {"message": reply.error or f"loopback error {reply.status}",
                      "type": STATUS_TYPES.get(reply.status, "api_error"), "param": None,
                      "code": reply.error_code}}


def _call_id(spec: Any, i: int, prefix: str = "call_") -> str:
    return str(spec.get("id") or f"{prefix}{i}")


def _arguments(spec: Any) -> str:
    args = spec.get("arguments", {})
    return args if isinstance(args, str) else json.dumps(args)


def _logprob_item(lp: tuple) -> dict[str, Any]:
    token, value = lp[0], float(lp[1])
    alts = lp[2] if len(lp) > 2 else [(token, value)]
    return {"token": token, "logprob": value, "bytes": list(token.encode()),
            "top_logprobs": [{"token": t, "logprob": float(v), "bytes": list(t.encode())} for t, v in alts]}


def _usage(reply: Reply, request: Any) -> dict[str, Any]:
    u = reply.usage_counts(request)
    return {"prompt_tokens": u["input"], "completion_tokens": u["output"], "total_tokens": u["input"] + u["output"],
            "prompt_tokens_details": {"cached_tokens": u["cache_read"]},
            "completion_tokens_details": {"reasoning_tokens": u["reasoning"]}}


def _finish(reply: Reply) -> str:
    return reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")


def chat_completion(reply: Reply, request: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None, "refusal": None}
    if reply.tool_calls:
        message["tool_calls"] = [{"id": _call_id(c, i), "type": "function",
                                  "function": {"name": c["name"], "arguments": _arguments(c)}}
                                 for i, c in enumerate(reply.tool_calls)]
    logprobs = {"content": [_logprob_item(lp) for lp in reply.logprobs], "refusal": None} if reply.logprobs else None
    return {"id": "chatcmpl-loopback", "object": "chat.completion", "created": int(time.time()),
            "model": reply.model or request.get("model", ""), "system_fingerprint": None,
            "choices": [{"index": 0, "message": message, "logprobs": logprobs, "finish_reason": _finish(reply)}],
            "usage": _usage(reply, request)}


def chat_stream(reply: Reply, request: Any) -> list[bytes]:
    model = reply.model or request.get("model", "")

    def chunk(delta: dict[str, Any], finish: str | None = None, logprobs: Any = None) -> bytes:
        return sse({"id": "chatcmpl-loopback", "object": "chat.completion.chunk", "created": int(time.time()),
                    "model": model, "system_fingerprint": None,
                    "choices": [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}]})

    events = [chunk({"role": "assistant", "content": ""})]
    for i, piece in enumerate(reply.pieces()):
        lp = {"content": [_logprob_item(reply.logprobs[i])], "refusal": None} if reply.logprobs else None
        events.append(chunk({"content": piece}, logprobs=lp))
    for i, call in enumerate(reply.tool_calls):
        args = _arguments(call)
        half = len(args) // 2
        events.append(chunk({"tool_calls": [{"index": i, "id": _call_id(call, i), "type": "function",
                                             "function": {"name": call["name"], "arguments": ""}}]}))
        for part in (args[:half], args[half:]):
            events.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": part}}]}))
    if reply.stream_error:
        events.append(sse({"error": {"message": reply.stream_error, "type": "server_error", "code": None}}))
        return events
    events.append(chunk({}, finish=_finish(reply)))
    if (request.get("stream_options") or {}).get("include_usage"):
        events.append(sse({"id": "chatcmpl-loopback", "object": "chat.completion.chunk", "created": int(time.time()),
                           "model": model, "choices": [], "usage": _usage(reply, request)}))
    events.append(sse("[DONE]"))
    return events


def _responses_output(reply: Reply) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if reply.text:
        items.append({"type": "message", "id": "msg_loopback", "status": "completed", "role": "assistant",
                      "content": [{"type": "output_text", "text": reply.text, "annotations": []}]})
    for i, call in enumerate(reply.tool_calls):
        items.append({"type": "function_call", "id": f"fc_{i}", "call_id": _call_id(call, i),
                      "name": call["name"], "arguments": _arguments(call), "status": "completed"})
    return items


def response_object(reply: Reply, request: Any, status: str = "completed") -> dict[str, Any]:
    u = reply.usage_counts(request)
    done = status == "completed"
    return {"id": "resp_loopback", "object": "response", "created_at": int(time.time()), "status": status,
            "model": reply.model or request.get("model", ""), "output": _responses_output(reply) if done else [],
            "usage": {"input_tokens": u["input"], "input_tokens_details": {"cached_tokens": u["cache_read"]},
                      "output_tokens": u["output"], "output_tokens_details": {"reasoning_tokens": u["reasoning"]},
                      "total_tokens": u["input"] + u["output"]} if done else None,
            "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "error": None,
            "incomplete_details": None, "instructions": None, "metadata": {}, "temperature": 1.0, "top_p": 1.0,
            "text": {"format": {"type": "text"}}}


def responses_stream(reply: Reply, request: Any) -> list[bytes]:
    seq = iter(range(10_000))

    def ev(kind: str, **data: Any) -> bytes:
        return sse({"type": kind, "sequence_number": next(seq), **data}, event=kind)

    events = [ev("response.created", response=response_object(reply, request, "in_progress")),
              ev("response.in_progress", response=response_object(reply, request, "in_progress"))]
    index = 0
    if reply.text:
        item = {"type": "message", "id": "msg_loopback", "status": "in_progress", "role": "assistant", "content": []}
        part = {"type": "output_text", "text": "", "annotations": []}
        loc = {"item_id": "msg_loopback", "output_index": 0, "content_index": 0}
        events += [ev("response.output_item.added", output_index=0, item=item),
                   ev("response.content_part.added", part=part, **loc)]
        events += [ev("response.output_text.delta", delta=p, logprobs=[], **loc) for p in reply.pieces()]
        done_part = {**part, "text": reply.text}
        events += [ev("response.output_text.done", text=reply.text, logprobs=[], **loc),
                   ev("response.content_part.done", part=done_part, **loc),
                   ev("response.output_item.done", output_index=0, item=_responses_output(reply)[0])]
        index = 1
    for i, call in enumerate(reply.tool_calls):
        final = _responses_output(reply)[index + i]
        events += [ev("response.output_item.added", output_index=index + i, item={**final, "arguments": "",
                                                                                 "status": "in_progress"}),
                   ev("response.function_call_arguments.delta", item_id=final["id"], output_index=index + i,
                      delta=final["arguments"]),
                   ev("response.function_call_arguments.done", item_id=final["id"], output_index=index + i,
                      arguments=final["arguments"]),
                   ev("response.output_item.done", output_index=index + i, item=final)]
    events.append(ev("response.completed", response=response_object(reply, request)))
    return events
