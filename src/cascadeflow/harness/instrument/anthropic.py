"""Instrumentation of the official `anthropic` SDK: `messages.create` sync and async (plain and
stream=True, and through `with_raw_response`), `messages.stream()` (its stream manager, sync and async) and
`messages.with_streaming_response.create`, whose response the caller reads later: it is settled from what
the caller read (`body_response`, through the lazily read response of patching.py).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
from collections.abc import Mapping
from typing import Any

from cascadeflow.cache.entry import CachedAnswer
from cascadeflow.harness.instrument.anthropic_cached import cached_events, cached_message
from cascadeflow.harness.instrument.args import given
from cascadeflow.harness.instrument.bodies import json_object, sse_payloads
from cascadeflow.harness.instrument.bridge import (
    DriveAsync,
    Handoff,
    PreparedCall,
    active_mode,
    complete_stream,
    drive_sync,
    finish,
    from_cache,
    kwargs_for,
    parsed_result,
    passes_unobserved,
    pause,
    prepare,
    raw_mode,
    redact_strings,
    release,
    settle_stream,
    stream_cut_off,
)
from cascadeflow.harness.instrument.cached import (
    SSE_TYPE,
    AsyncCachedStream,
    CachedStream,
    http_response,
    served_result,
    sse_body,
)
from cascadeflow.harness.instrument.patching import (
    MARK,
    instrument_async,
    instrument_sync,
    noting_client,
    patch,
    remembering_key,
)
from cascadeflow.harness.instrument.vendor import vendor_of
from cascadeflow.messages import ImagePart, Message, Request, Response, TextPart, ToolCall, ToolSpec, Usage
from cascadeflow.tokens import estimate_input_tokens, text_tokens_upper

log = logging.getLogger(__name__)

FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
          "refusal": "content_filter", "pause_turn": "stop"}
MESSAGES_URL = "https://api.anthropic.com/v1/messages"  # the URL a served answer's HTTP response names


def _blocks(content: Any) -> tuple[str | tuple[Any, ...] | None, tuple[ToolCall, ...], str | None]:
    """(content parts, tool calls, tool_use_id of a tool result) of one Anthropic message."""
    if content is None or isinstance(content, str):
        return content, (), None
    out: list[Any] = []
    calls: list[ToolCall] = []
    result_id = None
    for block in content:
        kind = block.get("type") if isinstance(block, Mapping) else getattr(block, "type", None)
        if not isinstance(block, Mapping):
            block = block.model_dump() if hasattr(block, "model_dump") else {"type": kind}
        if kind == "text":
            out.append(TextPart(str(block.get("text", ""))))
        elif kind == "image":
            out.append(ImagePart(str((block.get("source") or {}).get("url", "data:"))))
        elif kind == "tool_use":
            calls.append(ToolCall(id=str(block.get("id", "")), name=str(block.get("name", "")),
                                  arguments=json.dumps(block.get("input", {}), default=str)))
        elif kind == "tool_result":
            result_id = str(block.get("tool_use_id", ""))
            inner, _, _ = _blocks(block.get("content"))
            out.extend((TextPart(inner),) if isinstance(inner, str) else (inner or ()))
        else:
            out.append(TextPart(json.dumps(block, default=str)))
    return tuple(out), tuple(calls), result_id


class MessagesAdapter:
    provider = "anthropic"
    api = "anthropic.messages"

    def to_request(self, kwargs: dict[str, Any]) -> Request:
        messages: list[Message] = []
        system = kwargs.get("system")
        if given(system):
            parts, _, _ = _blocks(system)
            messages.append(Message("system", parts))
        for m in kwargs["messages"]:
            parts, calls, _ = _blocks(m.get("content"))
            messages.append(Message(role="assistant" if m.get("role") == "assistant" else "user",
                                    content=parts, tool_calls=calls))
        tools = tuple(ToolSpec(name=str(t.get("name", t.get("type", "tool"))),
                               description=str(t.get("description") or ""),
                               parameters=t.get("input_schema") or {"type": "object", "properties": {}})
                      for t in _given_tools(kwargs.get("tools")))
        return Request(tuple(messages), model=str(kwargs["model"]), max_tokens=self.requested_max_tokens(kwargs),
                       tools=tools, tool_choice=kwargs.get("tool_choice") if given(kwargs.get("tool_choice")) else None)

    def requested_max_tokens(self, kwargs: dict[str, Any]) -> Any:
        """The call's output-token limit as its view carries it (the API requires one)."""
        return kwargs.get("max_tokens")

    def enforce_kwargs(self, kwargs: dict[str, Any], view: Request, sent: Request,
                       kinds: tuple[str, ...]) -> dict[str, Any]:
        out = dict(kwargs)
        if sent.model != view.model:
            out["model"] = sent.model
        if view.tools and not sent.tools:
            out.pop("tools", None)
            out.pop("tool_choice", None)
        if sent.messages != view.messages and kinds:
            out["messages"] = redact_strings(out["messages"], kinds)
            if given(out.get("system")):
                out["system"] = redact_strings(out["system"], kinds)
        return out

    def to_response(self, result: Any, request: Request) -> Response:
        return message_response(parsed_result(result), request)

    def serves(self, kwargs: Mapping[str, Any], method: str) -> bool:
        """Which calls a stored answer can answer: `create`, plain or `stream=True`, directly or through
        `with_raw_response` / `with_streaming_response`, and `messages.stream()` (method "stream")."""
        return method in ("create", "stream")

    def cached_result(self, answer: CachedAnswer, request_id: str, kwargs: Mapping[str, Any],
                      asynchronous: bool) -> Any:
        """A cached answer as the SDK's own `Message` (validated by the SDK's model), usage split back into
        Anthropic's fields (its input_tokens excludes cache reads and writes); for `stream=True` the raw
        stream events of that message, the full usage in `message_delta` (the last event that has one)."""
        message = cached_message(answer, request_id)
        events = cached_events(message) if kwargs.get("stream") else None
        return served_result(message, events, url=MESSAGES_URL, request_id=message.id, raw=raw_mode(kwargs),
                             asynchronous=asynchronous, legacy_raw=False, named_events=True)

    def accumulator(self, kwargs: dict[str, Any], injected_usage: bool) -> MessagesStreamAccumulator:
        return MessagesStreamAccumulator()

    def body_response(self, body: bytes, streaming: bool, request: Request) -> tuple[Response, bool]:
        """A `with_streaming_response` call's Response from the body its caller read (an estimate of what
        arrived when the caller read none or part of it), and whether the body was whole (a stream's final
        event, a complete message)."""
        from anthropic.types import Message as SdkMessage

        if streaming:
            acc = MessagesStreamAccumulator()
            for payload in sse_payloads(body):
                event = _stream_event(payload)
                if event is not None:
                    acc.feed(event)
            return acc.response(request), acc.complete
        data = json_object(body)
        if data is None or "content" not in data:
            return MessagesStreamAccumulator().response(request), False
        return message_response(SdkMessage.construct(**data), request), True


def _stream_event(payload: dict[str, Any]) -> Any:
    """The SDK event of one raw stream payload the accumulator reads; None for the others (ping, stops, error)."""
    from anthropic import types

    kinds: dict[str, Any] = {
        "message_start": types.RawMessageStartEvent, "content_block_start": types.RawContentBlockStartEvent,
        "content_block_delta": types.RawContentBlockDeltaEvent, "message_delta": types.RawMessageDeltaEvent}
    cls = kinds.get(payload.get("type", ""))
    return cls.construct(**payload) if cls is not None else None


def _usage(usage: Any) -> Usage:
    cache_read = getattr(usage, "cache_read_input_tokens", None) or 0
    cache_write = getattr(usage, "cache_creation_input_tokens", None) or 0
    # Anthropic's input_tokens excludes cache reads and writes; ours includes them
    return Usage(input_tokens=(getattr(usage, "input_tokens", None) or 0) + cache_read + cache_write,
                 output_tokens=getattr(usage, "output_tokens", None) or 0, cache_read_tokens=cache_read,
                 cache_write_tokens=cache_write)


def message_response(message: Any, request: Request) -> Response:
    text = "".join(getattr(b, "text", "") for b in message.content if getattr(b, "type", "") == "text")
    calls = tuple(ToolCall(id=b.id, name=b.name, arguments=json.dumps(b.input, default=str))
                  for b in message.content if getattr(b, "type", "") == "tool_use")
    usage = _usage(message.usage) if getattr(message, "usage", None) is not None else Usage(
        estimate_input_tokens(request.messages, request.tools), text_tokens_upper(text), estimated=True)
    return Response(content=text, model=message.model or request.model, provider="anthropic", usage=usage,
                    tool_calls=calls, finish_reason=FINISH.get(message.stop_reason or "", "unknown"),  # type: ignore[arg-type]
                    request_id=message.id)


class MessagesStreamAccumulator:
    """Assembles text, tool calls and usage from raw message stream events."""

    def __init__(self) -> None:
        self.start: Any = None
        self.text: list[str] = []
        self.calls: list[list[str]] = []
        self.output_tokens: int | None = None
        self.stop: str | None = None

    def feed(self, event: Any) -> bool:
        kind = getattr(event, "type", "")
        if kind == "message_start":
            self.start = event.message
        elif kind == "content_block_start" and getattr(event.content_block, "type", "") == "tool_use":
            self.calls.append([event.content_block.id, event.content_block.name, ""])
        elif kind == "content_block_delta":
            delta = event.delta
            if getattr(delta, "type", "") == "text_delta":
                self.text.append(delta.text)
            elif getattr(delta, "type", "") == "input_json_delta" and self.calls:
                self.calls[-1][2] += delta.partial_json
        elif kind == "message_delta":
            self.output_tokens = getattr(event.usage, "output_tokens", None)
            self.stop = getattr(event.delta, "stop_reason", None) or self.stop
        return True

    @property
    def complete(self) -> bool:
        return self.stop is not None  # message_delta carries the stop reason (and the output usage)

    def response(self, request: Request) -> Response:
        text = "".join(self.text)
        if self.start is not None and self.output_tokens is not None:
            base = _usage(self.start.usage)
            usage = Usage(input_tokens=base.input_tokens, output_tokens=self.output_tokens,
                          cache_read_tokens=base.cache_read_tokens,
                          cache_write_tokens=base.cache_write_tokens)
        else:
            usage = Usage(estimate_input_tokens(request.messages, request.tools), text_tokens_upper(text),
                          estimated=True)
        return Response(content=text, model=getattr(self.start, "model", None) or request.model,
                        provider="anthropic", usage=usage,
                        tool_calls=tuple(ToolCall(id=i, name=n, arguments=a or "{}")
                                         for i, n, a in self.calls),
                        finish_reason=FINISH.get(self.stop or "", "unknown"),  # type: ignore[arg-type]
                        request_id=getattr(self.start, "id", None))


def _snapshot_response(stream: Any, request: Request) -> Response:
    """A `messages.stream()` call's Response from its MessageStream's message snapshot, priced like the
    events a `create(stream=True)` stream delivered (MessagesStreamAccumulator): from the usage of
    message_start + message_delta, else (no message_delta: message_start reports a placeholder output count)
    from the upper-bound estimate of what arrived."""
    try:
        message = stream.current_message_snapshot
    except Exception:  # noqa: BLE001 - the SDK asserts when no message_start arrived: estimate instead
        return MessagesStreamAccumulator().response(request)
    if message.stop_reason is not None:
        return message_response(message, request)
    acc = MessagesStreamAccumulator()
    acc.start = message
    acc.text = [getattr(b, "text", "") for b in message.content if getattr(b, "type", "") == "text"]
    acc.calls = [[b.id, b.name, json.dumps(b.input, default=str)] for b in message.content
                 if getattr(b, "type", "") == "tool_use"]
    return acc.response(request)


def _read_to_end(stream: Any) -> bool:
    """Whether a MessageStream's body was read to its end: the SDK closes its HTTP response (`response`, an
    httpx response: `is_closed`) when the event stream ends or fails, and not before; a caller that breaks
    out early leaves it open until the manager exits."""
    return bool(getattr(getattr(stream, "response", None), "is_closed", False))


def _stopped(stream: Any) -> bool:
    """Whether a MessageStream received its final events (message_delta's stop reason)."""
    try:
        return stream.current_message_snapshot.stop_reason is not None
    except Exception:  # noqa: BLE001 - the SDK asserts when no message_start arrived
        return False


class ManagedStream:
    """Stands in for the SDK's MessageStreamManager: the pipeline runs at `__enter__` (policy, reservation,
    the request), and settles at `__exit__` from the stream's message snapshot.

    A stream entered and never exited settles when it is collected: the MessageStream handed to the caller
    keeps this manager alive (`_cascadeflow_manager`), and `__del__` settles from its snapshot. The paused
    pipeline is held (`pause`) and reaches neither, so it is never garbage before they are."""

    def __init__(self, adapter: MessagesAdapter, *, original: Any, resource: Any, kwargs: dict[str, Any], mode: str):
        self._adapter, self._original, self._resource = adapter, original, resource
        self._kwargs, self._mode = kwargs, mode
        self._prepared: PreparedCall | None = None
        self._manager: Any = None  # the SDK's manager, entered by `invoke`
        self._stream: Any = None  # the SDK's MessageStream, handed to the caller
        self._plain: Any = None  # the SDK's own manager when the call is not instrumented
        self._served: Any = None  # the SDK's MessageStream over a cached answer's events (a cache hit)

    def _invoke(self, prepared: PreparedCall, entering: str) -> Any:
        # no reference to self, the manager or the stream is left in the paused coroutine: they are the
        # caller's, and the pipeline is held until settled
        adapter, original, resource = self._adapter, self._original, self._resource

        async def invoke(request: Request) -> Response:
            sent = kwargs_for(adapter, prepared, request)
            prepared.sent = True
            prepared.manager = original(resource, **sent)
            entered = getattr(prepared.manager, entering)()
            prepared.result = await entered if entering == "__aenter__" else entered
            del entered
            return await Handoff()
        return invoke

    def _entered(self, prepared: PreparedCall, coro: Any) -> Any:
        self._prepared, self._manager, self._stream = prepared, prepared.manager, prepared.result
        prepared.manager = prepared.result = None
        pause(prepared, coro)
        with contextlib.suppress(AttributeError):  # a stream that takes no attribute settles at exit only
            self._stream._cascadeflow_manager = self
        return self._stream

    def _settle(self, read_to_end: bool) -> None:
        """Settle from the stream's snapshot; a stream read to its end without its final event was cut off
        (the SDK ends it like any other): recorded as a failure charged its worst case. A caller leaving the
        block early is no cut: settled from what arrived."""
        prepared = self._prepared
        if prepared is None:  # nothing was prepared (the harness let the call through unobserved)
            return
        if read_to_end and prepared.coro is not None and not _stopped(self._stream):
            complete_stream(prepared, None, stream_cut_off(prepared))
            return
        settle_stream(prepared, lambda: _snapshot_response(self._stream, prepared.view))

    def __del__(self) -> None:
        # entered, never exited, and collected (with the stream that keeps it): settle from what arrived
        prepared = getattr(self, "_prepared", None)
        if prepared is not None and prepared.coro is not None:
            try:
                self._settle(_read_to_end(self._stream))
            except Exception:
                release(prepared)
                log.exception("cascadeflow: settling an abandoned message stream failed")

    def _prepare(self) -> PreparedCall | None:
        """`prepare` with the vendor of the resource's client (as `create` is), or None (the call goes to the SDK
        unobserved) when observe mode failed at it."""
        try:
            return prepare(self._adapter, self._kwargs, self._mode, vendor_of(self._adapter.provider, self._resource))
        except Exception as exc:
            if passes_unobserved(self._mode, exc, "preparing the call"):
                return None
            raise

    def _failed(self, prepared: PreparedCall, exc: BaseException) -> bool:
        """Whether entering goes on unobserved after the pipeline raised `exc`; else the call is recorded."""
        if not prepared.sent and passes_unobserved(self._mode, exc, "the pipeline before sending"):
            return True
        finish(prepared, None, None, exc)
        return False

    def _from_cache(self, prepared: PreparedCall, asynchronous: bool) -> Any:
        """The cache step: on a hit, the SDK's own MessageStream over the cached answer's raw events (the SDK
        accepts any iterable of raw events as the stream it reads), else None."""
        message = from_cache(self._adapter, prepared, "stream", asynchronous=asynchronous)
        if message is None:
            return None
        from anthropic import NOT_GIVEN
        from anthropic.lib.streaming import AsyncMessageStream, MessageStream

        events = cached_events(message)
        http = http_response(sse_body(events, named=True, done=False), SSE_TYPE, MESSAGES_URL, message.id)
        output_format = self._kwargs.get("output_format", NOT_GIVEN)
        # typed as the SDK's Stream, read only by iterating it, closing it and its `response`
        if asynchronous:
            self._served = AsyncMessageStream(AsyncCachedStream(events, http),  # type: ignore[arg-type]
                                              output_format=output_format)
        else:
            self._served = MessageStream(CachedStream(events, http),  # type: ignore[arg-type]
                                         output_format=output_format)
        return self._served

    def __enter__(self) -> Any:
        prepared = self._prepare()
        if prepared is not None and self._from_cache(prepared, asynchronous=False) is not None:
            return self._served
        if prepared is not None:
            prepared.call.external_send = "sync"
            coro = prepared.runtime.attempt(prepared.model, prepared.view, prepared.call,
                                            invoke=self._invoke(prepared, "__enter__"))
            try:
                drive_sync(coro)
            except BaseException as exc:
                if not self._failed(prepared, exc):
                    raise
            else:
                return self._entered(prepared, coro)
        self._plain = self._original(self._resource, **self._kwargs)
        return self._plain.__enter__()

    def __exit__(self, *exc: object) -> Any:
        if self._served is not None:
            return self._served.close()
        if self._plain is not None:
            return self._plain.__exit__(*exc)
        read_to_end = _read_to_end(self._stream)  # before the SDK's exit closes the response either way
        try:
            return self._manager.__exit__(*exc)
        finally:
            self._settle(read_to_end)

    async def __aenter__(self) -> Any:
        prepared = self._prepare()
        if prepared is not None and self._from_cache(prepared, asynchronous=True) is not None:
            return self._served
        if prepared is not None:
            prepared.call.external_send = "async"
            coro = prepared.runtime.attempt(prepared.model, prepared.view, prepared.call,
                                            invoke=self._invoke(prepared, "__aenter__"))
            try:
                await DriveAsync(coro)
            except BaseException as exc:
                if not self._failed(prepared, exc):
                    raise
            else:
                return self._entered(prepared, coro)
        self._plain = self._original(self._resource, **self._kwargs)
        return await self._plain.__aenter__()

    async def __aexit__(self, *exc: object) -> Any:
        if self._served is not None:
            return await self._served.close()
        if self._plain is not None:
            return await self._plain.__aexit__(*exc)
        read_to_end = _read_to_end(self._stream)
        try:
            return await self._manager.__aexit__(*exc)
        finally:
            self._settle(read_to_end)


def instrument_stream(adapter: MessagesAdapter, original: Any) -> Any:
    """`messages.stream(...)`: returns a ManagedStream (sync and async managers alike)."""

    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        mode = active_mode()
        if mode == "off" or args:
            return original(self, *args, **kwargs)
        return ManagedStream(adapter, original=original, resource=self, kwargs=kwargs, mode=mode)

    setattr(wrapper, MARK, original)
    return wrapper


def patch_anthropic() -> bool:
    """Patch the installed anthropic SDK; False when it is not installed."""
    try:
        from anthropic.resources.messages import messages
    except ImportError:
        return False
    import anthropic

    for client in (anthropic.Anthropic, anthropic.AsyncAnthropic):
        patch(client, "__init__", remembering_key)
    for cls in (messages.Messages, messages.AsyncMessages):  # a resource made from now on notes its client
        patch(cls, "__init__", noting_client, inherited=True)
    adapter = MessagesAdapter()
    patch(messages.Messages, "create", lambda f: instrument_sync(adapter, f))
    patch(messages.AsyncMessages, "create", lambda f: instrument_async(adapter, f))
    patch(messages.Messages, "stream", lambda f: instrument_stream(adapter, f))
    patch(messages.AsyncMessages, "stream", lambda f: instrument_stream(adapter, f))
    return True


def _given_tools(tools: Any) -> tuple[Any, ...] | list[Any]:
    return tools if given(tools) else ()
