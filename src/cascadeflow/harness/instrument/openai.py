"""Instrumentation of the official `openai` SDK: Chat Completions and Responses, sync and async, streaming
and `with_raw_response` (which calls the same patched `create`), the structured-output `parse()` helpers
(patched themselves: they post without `create`) and the `stream()` helpers (their managers call the
patched `create` on entry). `with_streaming_response.create` reaches the patched `create` too, with a
response whose body the caller reads later: it settles from what the caller read (`body_response`). Reads
SDK objects, never rewrites them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from cascadeflow.cache.entry import CachedAnswer
from cascadeflow.harness.instrument.args import given
from cascadeflow.harness.instrument.bodies import json_object, sse_payloads
from cascadeflow.harness.instrument.bridge import parsed_result, raw_mode, redact_strings
from cascadeflow.harness.instrument.cached import served_result
from cascadeflow.harness.instrument.openai_cached import (
    cached_chunks,
    cached_completion,
    cached_response,
    cached_response_events,
    pydantic_format,
)
from cascadeflow.harness.instrument.patching import (
    instrument_async,
    instrument_stream_manager,
    instrument_sync,
    noting_client,
    patch,
    remembering_key,
)
from cascadeflow.messages import ImagePart, Message, Request, Response, TextPart, ToolCall, ToolSpec, Usage
from cascadeflow.tokens import estimate_input_tokens, text_tokens_upper

ROLE_MAP = {"developer": "system", "system": "system", "user": "user", "assistant": "assistant", "tool": "tool",
            "function": "tool"}
FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls", "function_call": "tool_calls",
          "content_filter": "content_filter"}


def parts(content: Any) -> str | tuple[Any, ...] | None:
    """Message content as neutral parts; unknown part types count as their JSON text (for the token bound)."""
    if content is None or isinstance(content, str):
        return content
    out: list[Any] = []
    for part in content:
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind in ("text", "input_text", "output_text") and isinstance(part.get("text"), str):
            out.append(TextPart(part["text"]))
        elif kind in ("image_url", "input_image"):
            img = part.get("image_url")
            out.append(ImagePart(str(img.get("url") if isinstance(img, Mapping) else img)))
        else:
            out.append(TextPart(json.dumps(part, default=str)))
    return tuple(out)


def _tools(raw: Any) -> tuple[ToolSpec, ...]:
    out = []
    for tool in raw or ():
        fn = tool.get("function", tool) if isinstance(tool, Mapping) else {}
        name = fn.get("name") or tool.get("type", "tool")
        out.append(ToolSpec(name=str(name), description=str(fn.get("description") or ""),
                            parameters=fn.get("parameters") or {"type": "object", "properties": {}}))
    return tuple(out)


def _tool_calls(raw: Any) -> tuple[ToolCall, ...]:
    calls = []
    for c in raw or ():
        fn = c.get("function", {})
        args = fn.get("arguments", "{}")
        calls.append(ToolCall(id=str(c.get("id", "")), name=str(fn.get("name", "")),
                              arguments=args if isinstance(args, str) else json.dumps(args)))
    return tuple(calls)


def _enforce_common(kwargs: dict[str, Any], view: Request, sent: Request, kinds: tuple[str, ...],
                    text_fields: tuple[str, ...], max_field: str) -> dict[str, Any]:
    out = dict(kwargs)
    if sent.model != view.model:
        out["model"] = sent.model
    if view.tools and not sent.tools:
        for key in ("tools", "tool_choice", "parallel_tool_calls"):
            out.pop(key, None)
    if sent.messages != view.messages and kinds:
        for field in text_fields:
            if given(out.get(field)):
                out[field] = redact_strings(out[field], kinds)
    if not given(out.get(max_field)) and not given(out.get("max_tokens")):
        out[max_field] = sent.max_tokens  # the reservation covers exactly this many output tokens
    return out


class ChatCompletionsAdapter:
    provider = "openai"
    api = "openai.chat.completions"

    def to_request(self, kwargs: dict[str, Any]) -> Request:
        messages = []
        for m in kwargs["messages"]:
            role, content, calls = ROLE_MAP.get(m.get("role"), "user"), m.get("content"), m.get("tool_calls")
            if isinstance(content, str) and len(m) == 2 and "role" in m:  # a plain {"role", "content"} turn
                messages.append(Message(role, content))  # type: ignore[arg-type]
                continue
            messages.append(Message(role=role, content=parts(content),  # type: ignore[arg-type]
                                    tool_calls=_tool_calls(calls), tool_call_id=m.get("tool_call_id"),
                                    name=m.get("name")))
        max_tokens = self.requested_max_tokens(kwargs)
        tools, tool_choice = kwargs.get("tools"), kwargs.get("tool_choice")
        if tools is None and tool_choice is None:  # the usual call: positional, tools and tool_choice default
            return Request(messages=tuple(messages), model=str(kwargs["model"]), max_tokens=max_tokens)
        return Request(tuple(messages), model=str(kwargs["model"]), max_tokens=max_tokens,
                       tools=_tools(tools) if tools is not None and given(tools) else (),
                       tool_choice=tool_choice if tool_choice is not None and given(tool_choice) else None)

    def requested_max_tokens(self, kwargs: dict[str, Any]) -> Any:
        """The call's output-token limit as its view carries it (None when it sets none)."""
        max_tokens = kwargs.get("max_completion_tokens")
        if max_tokens is None or not given(max_tokens):  # `is None` first: the usual absent keys cost no call
            max_tokens = kwargs.get("max_tokens")
            max_tokens = max_tokens if max_tokens is None or type(max_tokens) is int or given(max_tokens) else None
        return max_tokens

    def enforce_kwargs(self, kwargs: dict[str, Any], view: Request, sent: Request,
                       kinds: tuple[str, ...]) -> dict[str, Any]:
        return _enforce_common(kwargs, view, sent, kinds, ("messages",), "max_completion_tokens")

    def ask_stream_usage(self, kwargs: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        options = kwargs.get("stream_options")
        if given(options) and options.get("include_usage"):
            return kwargs, False
        return {**kwargs, "stream_options": {**(options if given(options) else {}), "include_usage": True}}, True

    def to_response(self, result: Any, request: Request) -> Response:
        completion = parsed_result(result)
        choice = completion.choices[0] if completion.choices else None
        message = choice.message if choice else None
        raw_calls = getattr(message, "tool_calls", None)
        calls = tuple(ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments)
                      for c in raw_calls if getattr(c, "function", None)) if raw_calls else ()
        return Response(content=(message.content or "") if message else "",
                        model=completion.model or request.model, provider=self.provider,
                        usage=_chat_usage(completion.usage, request, ""), tool_calls=calls,
                        finish_reason=FINISH.get(choice.finish_reason if choice else "", "unknown"),  # type: ignore[arg-type]
                        request_id=completion.id)

    def accumulator(self, kwargs: dict[str, Any], injected_usage: bool) -> ChatStreamAccumulator:
        return ChatStreamAccumulator(injected_usage)

    def serves(self, kwargs: Mapping[str, Any], method: str) -> bool:
        """Which calls a stored answer can answer: `create`, plain or streamed, directly or through
        `with_raw_response` / `with_streaming_response`, and `parse()` with a pydantic model as its response
        format and no tools (docs/cache.md)."""
        if method == "parse":
            return raw_mode(kwargs) is None and pydantic_format(kwargs) is not None and not given(kwargs.get("tools"))
        return method == "create"

    def cached_result(self, answer: CachedAnswer, request_id: str, kwargs: Mapping[str, Any],
                      asynchronous: bool) -> Any:
        """A cached answer as the SDK's own `ChatCompletion` (validated by the SDK's model), usage included;
        for `stream=True` the `ChatCompletionChunk`s of a stream, the usage in the last one; for `parse()` a
        `ParsedChatCompletion` whose message is parsed into the caller's model, as the SDK parses it."""
        completion = cached_completion(answer, request_id)
        fmt = pydantic_format(kwargs)
        if fmt is not None and not kwargs.get("stream"):
            from openai.types.chat import ParsedChatCompletion

            data = completion.model_dump()
            data["choices"][0]["message"]["parsed"] = fmt.model_validate_json(answer.content)
            return ParsedChatCompletion[fmt].model_validate(data)  # type: ignore[valid-type]
        events = cached_chunks(completion, kwargs) if kwargs.get("stream") else None
        return served_result(completion, events, url="https://api.openai.com/v1/chat/completions",
                             request_id=completion.id, raw=raw_mode(kwargs), asynchronous=asynchronous,
                             legacy_raw=True, done=True)

    def body_response(self, body: bytes, streaming: bool, request: Request) -> tuple[Response, bool]:
        """A `with_streaming_response` call's Response from the body its caller read (an estimate of what
        arrived when the caller read none or part of it), and whether the body was whole (a stream's final
        chunk, a complete completion)."""
        from openai.types.chat import ChatCompletion, ChatCompletionChunk

        if streaming:
            acc = ChatStreamAccumulator(injected_usage=False)
            for payload in sse_payloads(body):
                if "choices" in payload:  # an error event has none
                    acc.feed(ChatCompletionChunk.construct(**payload))
            return acc.response(request), acc.complete
        data = json_object(body)
        if data is None or "choices" not in data:
            return ChatStreamAccumulator(injected_usage=False).response(request), False
        return self.to_response(ChatCompletion.construct(**data), request), True


def _chat_usage(usage: Any, request: Request, text: str) -> Usage:
    if usage is None:
        return Usage(estimate_input_tokens(request.messages, request.tools), text_tokens_upper(text), estimated=True)
    cached = getattr(getattr(usage, "prompt_tokens_details", None), "cached_tokens", None) or 0
    reasoning = getattr(getattr(usage, "completion_tokens_details", None), "reasoning_tokens", None) or 0
    return Usage(input_tokens=usage.prompt_tokens or 0, output_tokens=usage.completion_tokens or 0,
                 cache_read_tokens=cached, cache_write_tokens=0, reasoning_tokens=reasoning)


class ChatStreamAccumulator:
    """Assembles text, tool calls and usage from chat.completion.chunk events."""

    def __init__(self, injected_usage: bool):
        self.injected_usage = injected_usage
        self.text: list[str] = []
        self.tools: dict[int, list[str]] = {}
        self.usage: Any = None
        self.finish: str | None = None
        self.model = ""
        self.id: str | None = None

    def feed(self, chunk: Any) -> bool:
        self.model, self.id = chunk.model or self.model, chunk.id or self.id
        if getattr(chunk, "usage", None) is not None:
            self.usage = chunk.usage
        for choice in chunk.choices or ():
            delta = choice.delta
            if delta is not None and delta.content:
                self.text.append(delta.content)
            for tc in (getattr(delta, "tool_calls", None) or ()):
                entry = self.tools.setdefault(tc.index, [getattr(tc, "id", None) or "", "", ""])
                if tc.function is not None:
                    entry[1] += tc.function.name or ""
                    entry[2] += tc.function.arguments or ""
            self.finish = choice.finish_reason or self.finish
        # the usage-only chunk we asked for in enforce mode is not shown to code that did not ask for it
        return not (self.injected_usage and not chunk.choices and chunk.usage is not None)

    @property
    def complete(self) -> bool:
        return self.finish is not None  # a choice's finish_reason comes in the last content chunk

    def response(self, request: Request) -> Response:
        text = "".join(self.text)
        calls = tuple(ToolCall(id=i, name=n, arguments=a) for i, n, a in self.tools.values())
        return Response(content=text, model=self.model or request.model, provider="openai",
                        usage=_chat_usage(self.usage, request, text), tool_calls=calls,
                        finish_reason=FINISH.get(self.finish or "", "unknown"), request_id=self.id)  # type: ignore[arg-type]


class ResponsesAdapter:
    provider = "openai"
    api = "openai.responses"

    def to_request(self, kwargs: dict[str, Any]) -> Request:
        messages: list[Message] = []
        if given(kwargs.get("instructions")):
            messages.append(Message("system", str(kwargs["instructions"])))
        items = kwargs.get("input")
        if isinstance(items, str):
            messages.append(Message("user", items))
        elif given(items):
            for item in items:
                messages.append(_response_item(item))
        return Request(tuple(messages), model=str(kwargs["model"]), max_tokens=self.requested_max_tokens(kwargs),
                       tools=_tools(kwargs.get("tools") if given(kwargs.get("tools")) else ()),
                       tool_choice=kwargs.get("tool_choice") if given(kwargs.get("tool_choice")) else None)

    def requested_max_tokens(self, kwargs: dict[str, Any]) -> Any:
        """The call's output-token limit as its view carries it (None when it sets none)."""
        return kwargs.get("max_output_tokens") if given(kwargs.get("max_output_tokens")) else None

    def enforce_kwargs(self, kwargs: dict[str, Any], view: Request, sent: Request,
                       kinds: tuple[str, ...]) -> dict[str, Any]:
        return _enforce_common(kwargs, view, sent, kinds, ("input", "instructions"), "max_output_tokens")

    def to_response(self, result: Any, request: Request) -> Response:
        return _responses_response(parsed_result(result), request)

    def accumulator(self, kwargs: dict[str, Any], injected_usage: bool) -> ResponsesStreamAccumulator:
        return ResponsesStreamAccumulator()

    def serves(self, kwargs: Mapping[str, Any], method: str) -> bool:
        """`create` calls that keep no state on the server (`store=False`, no `conversation`, not in the
        background), plain or streamed, directly or through the raw-response wrappers. A stored response has
        an id that later calls continue from (`previous_response_id`) and a conversation gets the answer
        appended: an answer from the cache would leave neither on the server (docs/cache.md)."""
        return (method == "create" and kwargs.get("store") is False and not given(kwargs.get("conversation"))
                and not kwargs.get("background"))

    def cached_result(self, answer: CachedAnswer, request_id: str, kwargs: Mapping[str, Any],
                      asynchronous: bool) -> Any:
        """A cached answer as the SDK's own `Response` (its text as one output message, its tool calls as
        function_call items, the usage); for `stream=True` the stream events of that response, from
        `response.created` to `response.completed`, which carries the usage."""
        response = cached_response(answer, request_id, kwargs)
        events = cached_response_events(response) if kwargs.get("stream") else None
        return served_result(response, events, url="https://api.openai.com/v1/responses", request_id=response.id,
                             raw=raw_mode(kwargs), asynchronous=asynchronous, legacy_raw=True, named_events=True)

    def body_response(self, body: bytes, streaming: bool, request: Request) -> tuple[Response, bool]:
        """Like ChatCompletionsAdapter.body_response, for the Responses API's body and event stream."""
        from openai.types.responses import Response as SdkResponse

        if streaming:
            acc = ResponsesStreamAccumulator()
            for payload in sse_payloads(body):
                final = payload.get("response")
                acc.feed(SimpleNamespace(type=payload.get("type", ""), delta=payload.get("delta", ""),
                                         response=SdkResponse.construct(**final) if isinstance(final, dict) else None))
            return acc.response(request), acc.complete
        data = json_object(body)
        if data is None or "output" not in data:
            return ResponsesStreamAccumulator().response(request), False
        return _responses_response(SdkResponse.construct(**data), request), True


def _response_item(item: Any) -> Message:
    kind = item.get("type") if isinstance(item, Mapping) else None
    if kind in (None, "message") and "role" in item:
        return Message(ROLE_MAP.get(item["role"], "user"), parts(item.get("content")))  # type: ignore[arg-type]
    if kind == "function_call":
        return Message(role="assistant", content=None,
                       tool_calls=(ToolCall(id=str(item.get("call_id", "")), name=str(item.get("name", "")),
                                            arguments=str(item.get("arguments", "{}"))),))
    if kind == "function_call_output":
        return Message("tool", str(item.get("output", "")), tool_call_id=str(item.get("call_id", "")))
    return Message("user", json.dumps(item, default=str))


def _responses_response(result: Any, request: Request) -> Response:
    usage = getattr(result, "usage", None)
    calls = tuple(ToolCall(id=str(o.call_id), name=str(o.name), arguments=str(o.arguments))
                  for o in (result.output or ()) if getattr(o, "type", "") == "function_call")
    text = getattr(result, "output_text", "") or ""
    if usage is None:
        u = Usage(estimate_input_tokens(request.messages, request.tools), text_tokens_upper(text), estimated=True)
    else:
        cached = getattr(getattr(usage, "input_tokens_details", None), "cached_tokens", None) or 0
        reasoning = getattr(getattr(usage, "output_tokens_details", None), "reasoning_tokens", None) or 0
        u = Usage(usage.input_tokens or 0, usage.output_tokens or 0, cache_read_tokens=cached,
                  reasoning_tokens=reasoning)
    status = getattr(result, "status", None)
    finish = "tool_calls" if calls else ("stop" if status == "completed" else
                                         "length" if status == "incomplete" else "unknown")
    return Response(content=text, model=getattr(result, "model", None) or request.model, provider="openai",
                    usage=u, tool_calls=calls, finish_reason=finish,  # type: ignore[arg-type]
                    request_id=getattr(result, "id", None))


class ResponsesStreamAccumulator:
    """Takes the final `response.completed` (or incomplete/failed) event's response, text deltas before it."""

    def __init__(self) -> None:
        self.final: Any = None
        self.text: list[str] = []

    def feed(self, event: Any) -> bool:
        kind = getattr(event, "type", "")
        if kind == "response.output_text.delta":
            self.text.append(event.delta)
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            self.final = event.response
        return True

    @property
    def complete(self) -> bool:
        return self.final is not None

    def response(self, request: Request) -> Response:
        if self.final is not None:
            return _responses_response(self.final, request)
        text = "".join(self.text)
        usage = Usage(estimate_input_tokens(request.messages, request.tools), text_tokens_upper(text), estimated=True)
        return Response(content=text, model=request.model, provider="openai", usage=usage, finish_reason="unknown")


def patch_openai() -> bool:
    """Patch the installed openai SDK; False when it is not installed."""
    try:
        from openai.resources.chat.completions import completions as chat
        from openai.resources.responses import responses
    except ImportError:
        return False
    import openai

    for client in (openai.OpenAI, openai.AsyncOpenAI):
        patch(client, "__init__", remembering_key)
    # a resource made from now on notes its client: a call on it knows the host it goes to (vendor.py)
    for cls in (chat.Completions, chat.AsyncCompletions, responses.Responses, responses.AsyncResponses):
        patch(cls, "__init__", noting_client, inherited=True)
    chat_adapter, responses_adapter = ChatCompletionsAdapter(), ResponsesAdapter()
    patch(chat.Completions, "create", lambda f: instrument_sync(chat_adapter, f))
    patch(chat.AsyncCompletions, "create", lambda f: instrument_async(chat_adapter, f))
    patch(responses.Responses, "create", lambda f: instrument_sync(responses_adapter, f))
    patch(responses.AsyncResponses, "create", lambda f: instrument_async(responses_adapter, f))
    # the structured-output helpers post directly (not through `create`), so they are patched themselves
    patch(chat.Completions, "parse", lambda f: instrument_sync(chat_adapter, f))
    patch(chat.AsyncCompletions, "parse", lambda f: instrument_async(chat_adapter, f))
    patch(responses.Responses, "parse", lambda f: instrument_sync(responses_adapter, f))
    patch(responses.AsyncResponses, "parse", lambda f: instrument_async(responses_adapter, f))
    # the stream helpers' managers call the patched `create` on entry; wrapped so leaving early settles
    for cls in (chat.Completions, chat.AsyncCompletions, responses.Responses, responses.AsyncResponses):
        patch(cls, "stream", instrument_stream_manager)
    return True

