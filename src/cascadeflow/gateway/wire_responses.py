"""The OpenAI Responses API as a client speaks it to the gateway: `input` (a string or message, function
call and function call output items) and `instructions` in, `response` objects and the Responses SSE event
sequence out. Stateless: `previous_response_id` and stored conversations are refused by name."""

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
from cascadeflow.messages import Response, StreamEvent, TextDelta, ToolCallDelta

KNOWN = frozenset({"model", "input", "instructions", "max_output_tokens", "temperature", "top_p", "tools",
                   "tool_choice", "stream", "metadata", "user", "store", "parallel_tool_calls"})


def _content(raw: Any, where: str) -> Any:
    if isinstance(raw, str):
        return raw
    if not isinstance(raw, list):
        raise InvalidRequestError(f"{where}.content must be a string or a list of parts")
    return [{"type": "text", "text": p.get("text")} if isinstance(p, Mapping) and p.get("type") in (
        "input_text", "output_text", "text") else p for p in raw]


def _item(raw: Any, index: int) -> dict[str, Any]:
    where = f"input[{index}]"
    if not isinstance(raw, Mapping):
        raise InvalidRequestError(f"{where} must be an object")
    kind = raw.get("type", "message")
    if kind == "message":
        role = "system" if raw.get("role") == "developer" else raw.get("role")
        return {"role": role, "content": _content(raw.get("content"), where)}
    if kind == "function_call":
        return {"role": "assistant", "content": None, "tool_calls": [{"id": raw.get("call_id"), "type": "function",
                "function": {"name": raw.get("name"), "arguments": raw.get("arguments") or "{}"}}]}
    if kind == "function_call_output":
        output = raw.get("output")
        return {"role": "tool", "tool_call_id": raw.get("call_id"),
                "content": output if isinstance(output, str) else orjson.dumps(output).decode()}
    raise InvalidRequestError(f"{where}: unsupported input item type {kind!r}")


def _tools(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise InvalidRequestError("'tools' must be a list")
    out = []
    for tool in raw:
        if not isinstance(tool, Mapping) or tool.get("type") != "function":
            raise InvalidRequestError("only function tools are supported ({\"type\": \"function\", \"name\": ...})")
        out.append({"type": "function", "function": {k: tool[k] for k in ("name", "description", "parameters")
                                                      if k in tool}})
    return out


def parse(body: Any) -> ClientCall:
    body = require_object(body)
    refuse_unknown(body, KNOWN, "responses")
    model = require_model(body)
    raw = body.get("input")
    messages: list[dict[str, Any]] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": str(body["instructions"])})
    if isinstance(raw, str):
        messages.append({"role": "user", "content": raw})
    elif isinstance(raw, list) and raw:
        messages.extend(_item(item, i) for i, item in enumerate(raw))
    else:
        raise InvalidRequestError("'input' must be a string or a non-empty list of items")
    options: dict[str, Any] = {}
    if body.get("max_output_tokens") is not None:
        options["max_tokens"] = body["max_output_tokens"]
    for name in ("temperature", "top_p", "parallel_tool_calls"):
        if body.get(name) is not None:
            options[name] = body[name]
    if body.get("tools"):
        options["tools"] = _tools(body["tools"])
    choice = body.get("tool_choice")
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        choice = {"type": "function", "function": {"name": choice.get("name")}}
    if choice is not None:
        options["tool_choice"] = choice
    user = body.get("user")
    return ClientCall(model=model, messages=messages, options=options, metadata=optional_metadata(body.get("metadata")),
                      user=user if isinstance(user, str) else None, stream=as_bool(body.get("stream"), "stream"))


def _output(response: Response, request_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if response.content:
        items.append({"type": "message", "id": f"msg_{request_id}", "status": "completed", "role": "assistant",
                      "content": [{"type": "output_text", "text": response.content, "annotations": []}]})
    items += [{"type": "function_call", "id": f"fc_{request_id}_{i}", "call_id": c.id, "name": c.name,
               "arguments": c.arguments, "status": "completed"} for i, c in enumerate(response.tool_calls)]
    return items


def _shell(request_id: str, model: str, status: str) -> dict[str, Any]:
    return {"id": f"resp_{request_id}", "object": "response", "created_at": int(time.time()), "status": status,
            "model": model, "output": [], "usage": None, "parallel_tool_calls": True, "tool_choice": "auto",
            "tools": [], "error": None, "incomplete_details": None, "instructions": None, "metadata": {},
            "temperature": None, "top_p": None, "text": {"format": {"type": "text"}}}


def response_object(response: Response, *, request_id: str, model: str) -> dict[str, Any]:
    usage = response.usage
    incomplete = response.finish_reason == "length"
    return {**_shell(request_id, model, "incomplete" if incomplete else "completed"),
            "output": _output(response, request_id),
            "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
            "usage": {"input_tokens": usage.input_tokens,
                      "input_tokens_details": {"cached_tokens": usage.cache_read_tokens},
                      "output_tokens": usage.output_tokens,
                      "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
                      "total_tokens": usage.total_tokens}}


class ResponsesStream:
    """Encodes stream events as the Responses event sequence (created, output items with their deltas,
    completed with the whole response and its usage)."""

    def __init__(self, *, request_id: str, model: str):
        self.request_id = request_id
        self.model = model
        self._seq = 0
        self._started = False
        self._text: list[str] = []
        self._calls: dict[int, dict[str, Any]] = {}
        self._open: str | None = None  # "text" | "call:<index>"
        self._index = -1  # output_index of the open item

    def _ev(self, kind: str, **data: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self._seq, **data}
        self._seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"

    def _begin(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        shell = _shell(self.request_id, self.model, "in_progress")
        return self._ev("response.created", response=shell) + self._ev("response.in_progress", response=shell)

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        kind, self._open = self._open, None
        if kind == "text":
            text = "".join(self._text)
            loc: dict[str, Any] = {"item_id": f"msg_{self.request_id}", "output_index": self._index,
                                   "content_index": 0}
            part = {"type": "output_text", "text": text, "annotations": []}
            item = {"type": "message", "id": loc["item_id"], "status": "completed", "role": "assistant",
                    "content": [part]}
            return (self._ev("response.output_text.done", text=text, logprobs=[], **loc)
                    + self._ev("response.content_part.done", part=part, **loc)
                    + self._ev("response.output_item.done", output_index=self._index, item=item))
        call = self._calls[int(kind.split(":")[1])]
        item = {**call["item"], "arguments": "".join(call["args"]), "status": "completed"}
        return (self._ev("response.function_call_arguments.done", item_id=item["id"], output_index=self._index,
                         arguments=item["arguments"])
                + self._ev("response.output_item.done", output_index=self._index, item=item))

    def event(self, event: StreamEvent) -> bytes:
        out = self._begin()
        if isinstance(event, TextDelta):
            loc = {"item_id": f"msg_{self.request_id}", "output_index": self._index, "content_index": 0}
            if self._open != "text":
                out += self._close()
                self._index += 1
                self._open = "text"
                loc["output_index"] = self._index
                item = {"type": "message", "id": loc["item_id"], "status": "in_progress", "role": "assistant",
                        "content": []}
                out += self._ev("response.output_item.added", output_index=self._index, item=item)
                out += self._ev("response.content_part.added", part={"type": "output_text", "text": "",
                                                                     "annotations": []}, **loc)
            self._text.append(event.text)
            return out + self._ev("response.output_text.delta", delta=event.text, logprobs=[], **loc)
        if isinstance(event, ToolCallDelta):
            slot = f"call:{event.index}"
            if self._open != slot:
                out += self._close()
                self._index += 1
                self._open = slot
                item = {"type": "function_call", "id": f"fc_{self.request_id}_{event.index}", "call_id": event.id or "",
                        "name": event.name or "", "arguments": "", "status": "in_progress"}
                self._calls[event.index] = {"item": item, "args": []}
                out += self._ev("response.output_item.added", output_index=self._index, item=item)
            call = self._calls[event.index]
            if event.arguments:
                call["args"].append(event.arguments)
                out += self._ev("response.function_call_arguments.delta", item_id=call["item"]["id"],
                                output_index=self._index, delta=event.arguments)
        return out

    def done(self, response: Response) -> bytes:
        final = response_object(response, request_id=self.request_id, model=self.model)
        return self._begin() + self._close() + self._ev("response.completed", response=final)

    def error(self, body: Mapping[str, Any]) -> bytes:
        error = body.get("error") or {}
        return self._ev("error", code=error.get("code"), message=error.get("message"), param=None)
