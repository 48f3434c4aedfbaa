"""Neutral, structured request and response types shared by every provider, the cascade and the harness.

Messages stay structured end to end: a multi-turn chat with tool calls and multi-part content is never
flattened into one string. Types are frozen slotted dataclasses: cheap to build on the hot path.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from cascadeflow.errors import ConfigurationError, InvalidRequestError
from cascadeflow.models import validate_timeout

Role = Literal["system", "user", "assistant", "tool"]
ROLES: frozenset[str] = frozenset({"system", "user", "assistant", "tool"})


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str
    type: Literal["text"] = "text"


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image by URL (http(s) or data: URL). `media_type` is needed by some providers for data URLs."""

    url: str
    media_type: str | None = None
    detail: str | None = None
    type: Literal["image"] = "image"


ContentPart = TextPart | ImagePart


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call requested by the model; `arguments` is the raw JSON text the model produced."""

    id: str
    name: str
    arguments: str = "{}"

    def parsed_arguments(self) -> Any:
        """The arguments as JSON; raises ValueError when the model produced invalid JSON."""
        return json.loads(self.arguments or "{}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolSpec:
    """A tool the model may call: a name, a description and a JSON Schema for its arguments."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})

    @classmethod
    def coerce(cls, tool: ToolSpec | Mapping[str, Any]) -> ToolSpec:
        if isinstance(tool, ToolSpec):
            return tool
        if not isinstance(tool, Mapping):
            raise InvalidRequestError(f"a tool must be a ToolSpec or a dict, got {type(tool).__name__}")
        spec: Mapping[str, Any] = tool
        if spec.get("type") == "function" and "function" in spec:  # OpenAI shape
            spec = spec["function"]
        elif "input_schema" in spec:  # Anthropic shape
            spec = {**spec, "parameters": spec["input_schema"]}
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequestError("a tool needs a non-empty 'name'")
        params = spec.get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(params, Mapping):
            raise InvalidRequestError(f"tool {name!r}: 'parameters' must be a JSON Schema object")
        return cls(name=name, description=str(spec.get("description") or ""), parameters=params)


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str | tuple[ContentPart, ...] | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None  # for role="tool": which call this result answers
    name: str | None = None

    @property
    def text(self) -> str:
        """The textual content (parts joined); images are left out."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content if isinstance(p, TextPart))

    @classmethod
    def system(cls, text: str) -> Message:
        return cls("system", text)

    @classmethod
    def user(cls, content: str | Sequence[ContentPart]) -> Message:
        return cls("user", content if isinstance(content, str) else tuple(content))

    @classmethod
    def assistant(cls, text: str | None = None, tool_calls: Iterable[ToolCall] = ()) -> Message:
        return cls(role="assistant", content=text, tool_calls=tuple(tool_calls))

    @classmethod
    def tool(cls, tool_call_id: str, content: str) -> Message:
        return cls("tool", content, tool_call_id=tool_call_id)

    def to_dict(self) -> dict[str, Any]:
        """An OpenAI-shaped dict (the lingua franca of logs and the replay format)."""
        out: dict[str, Any] = {"role": self.role}
        if isinstance(self.content, tuple):
            out["content"] = [_part_to_dict(p) for p in self.content]
        else:
            out["content"] = self.content
        if self.tool_calls:
            out["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.tool_calls
            ]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            out["name"] = self.name
        return out


def _part_to_dict(part: ContentPart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    image: dict[str, Any] = {"url": part.url}
    if part.detail:
        image["detail"] = part.detail
    return {"type": "image_url", "image_url": image}


def _coerce_part(raw: Any, index: int) -> ContentPart:
    if isinstance(raw, (TextPart, ImagePart)):
        return raw
    if isinstance(raw, str):
        return TextPart(raw)
    if not isinstance(raw, Mapping):
        raise InvalidRequestError(f"message {index}: a content part must be a dict, got {type(raw).__name__}")
    kind = raw.get("type")
    if kind in ("text", "input_text", "output_text"):
        text = raw.get("text")
        if not isinstance(text, str):
            raise InvalidRequestError(f"message {index}: a text part needs a string 'text'")
        return TextPart(text)
    if kind in ("image_url", "input_image"):
        img = raw.get("image_url")
        url = img.get("url") if isinstance(img, Mapping) else img
        if not isinstance(url, str):
            raise InvalidRequestError(f"message {index}: an image part needs image_url.url")
        return ImagePart(url=url, detail=img.get("detail") if isinstance(img, Mapping) else None)
    if kind == "image":  # Anthropic block
        src = raw.get("source") or {}
        if src.get("type") == "base64":
            return ImagePart(f"data:{src.get('media_type')};base64,{src.get('data')}", src.get("media_type"))
        return ImagePart(url=str(src.get("url")))
    raise InvalidRequestError(f"message {index}: unsupported content part type {kind!r} (use 'text' or 'image_url')")


def _coerce_tool_calls(raw: Any, index: int) -> tuple[ToolCall, ...]:
    if not raw:
        return ()
    calls = []
    for c in raw:
        if isinstance(c, ToolCall):
            calls.append(c)
            continue
        fn = c.get("function", c) if isinstance(c, Mapping) else None
        if not isinstance(fn, Mapping) or not fn.get("name"):
            raise InvalidRequestError(f"message {index}: a tool call needs a function name")
        args = fn.get("arguments", "{}")
        calls.append(ToolCall(id=str(c.get("id") or ""), name=fn["name"],
                              arguments=args if isinstance(args, str) else json.dumps(args)))
    return tuple(calls)


def coerce_message(raw: object, index: int = 0) -> Message:
    """Accept a Message or an OpenAI-shaped dict; reject anything malformed with the message index."""
    if isinstance(raw, Message):
        return raw
    if not isinstance(raw, Mapping):
        raise InvalidRequestError(f"message {index}: expected a dict with 'role' and 'content', got {type(raw).__name__}")
    role = raw.get("role")
    if role not in ROLES:
        raise InvalidRequestError(f"message {index}: role must be one of {sorted(ROLES)}, got {role!r}")
    content = raw.get("content")
    if isinstance(content, list):
        content = tuple(_coerce_part(p, index) for p in content)
    elif content is not None and not isinstance(content, str):
        raise InvalidRequestError(f"message {index}: content must be a string, a list of parts or None")
    tool_calls = _coerce_tool_calls(raw.get("tool_calls"), index)
    if role == "tool" and not raw.get("tool_call_id"):
        raise InvalidRequestError(f"message {index}: a tool message needs 'tool_call_id'")
    if content is None and not tool_calls:
        raise InvalidRequestError(f"message {index}: content is missing")
    return Message(role=role, content=content, tool_calls=tool_calls,
                   tool_call_id=raw.get("tool_call_id"), name=raw.get("name"))


def coerce_messages(raw: str | Message | Sequence[Message | Mapping[str, Any]]) -> tuple[Message, ...]:
    """A query string becomes one user message; a list is validated message by message."""
    if isinstance(raw, str):
        if not raw.strip():
            raise InvalidRequestError("the query is empty")
        return (Message("user", raw),)
    if isinstance(raw, Message):
        return (raw,)
    if not isinstance(raw, Sequence) or isinstance(raw, (bytes, bytearray)):
        raise InvalidRequestError("messages must be a string or a list of messages")
    if not raw:
        raise InvalidRequestError("messages is empty: pass at least one message")
    return tuple(coerce_message(m, i) for i, m in enumerate(raw))


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts. `input_tokens` includes cache reads and writes (the OpenTelemetry convention)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0  # part of output_tokens
    estimated: bool = False  # True when counted by us rather than reported by the provider

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            estimated=self.estimated or other.estimated,
        )


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error", "unknown"]


@dataclass(frozen=True, slots=True)
class Request:
    """One model call, provider-neutral. `model` is the bare model id of the provider."""

    messages: tuple[Message, ...]
    model: str = ""
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str | Mapping[str, Any] | None = None
    logprobs: bool = False
    top_logprobs: int | None = None
    response_format: Mapping[str, Any] | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    timeout: float | None = None  # total seconds for this call, overriding the provider default
    extra: Mapping[str, Any] = field(default_factory=dict)  # provider-specific body fields, passed through
    max_compute_seconds: float | None = None  # machine-time cap for compute-priced self-hosted models

    def with_(self, **changes: Any) -> Request:
        """A copy with `changes` applied (`dataclasses.replace`)."""
        return replace(self, **changes)


# Provider sampling options a call may pass by name (they go to the wire body as given); anything else
# a provider understands goes in `extra_body=` so that a misspelt option is an error, not a silent no-op.
WIRE_OPTIONS = ("frequency_penalty", "logit_bias", "min_p", "parallel_tool_calls", "presence_penalty",
                "reasoning_effort", "repeat_penalty", "seed", "service_tier", "top_k", "top_p", "typical_p",
                "user")
_NAMED = ("max_tokens", "metadata", "logprobs", "response_format", "stop", "temperature", "timeout", "tool_choice",
          "tools", "top_logprobs")


def check_options(options: Mapping[str, Any]) -> None:
    """Raise InvalidRequestError naming every option that is not a request field nor a wire option."""
    unknown = sorted(set(options) - set(WIRE_OPTIONS) - {"extra_body"} - set(_NAMED))
    if unknown:
        accepted = ", ".join(sorted({*_NAMED, *WIRE_OPTIONS, "extra_body"}))
        raise InvalidRequestError(f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                                  f"accepted: {accepted} (a provider-specific field goes in extra_body={{...}})")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_option_values(temperature: Any, top_logprobs: Any, timeout: Any, stop: Any, metadata: Any) -> None:
    """The typed error for a call option of the wrong type or range (never a bare TypeError or ValueError)."""
    if temperature is not None and not (_is_number(temperature) and 0 <= temperature <= 2):
        raise InvalidRequestError(f"temperature must be a number between 0 and 2, got {temperature!r}")
    if top_logprobs is not None and not (isinstance(top_logprobs, int) and not isinstance(top_logprobs, bool)
                                         and 0 <= top_logprobs <= 20):
        raise InvalidRequestError(f"top_logprobs must be an integer between 0 and 20, got {top_logprobs!r}")
    if timeout is not None and not (_is_number(timeout) and timeout > 0):
        raise InvalidRequestError(f"timeout must be positive seconds, got {timeout!r}")
    if stop is not None and not isinstance(stop, str) and not (
            isinstance(stop, Sequence) and all(isinstance(s, str) for s in stop)):
        raise InvalidRequestError(f"stop must be a string or a list of strings, got {stop!r}")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise InvalidRequestError(f"metadata must be a dict, got {type(metadata).__name__}")


def _check_unicode(messages: tuple[Message, ...]) -> None:
    """A lone surrogate (text decoded with errors='surrogateescape', a broken JSON escape) cannot be sent as
    UTF-8: refused here, naming the message, rather than as a UnicodeEncodeError mid-call."""
    for index, message in enumerate(messages):
        for text in (message.text, message.name or ""):
            if not text.isascii():
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError as exc:
                    raise InvalidRequestError(f"message {index}: text holds a character UTF-8 cannot encode "
                                              f"({exc.reason} at position {exc.start})") from None


def build_request(
    messages: str | Message | Sequence[Message | Mapping[str, Any]],
    *,
    model: str = "",
    max_tokens: int | None = None,
    temperature: float | None = None,
    tools: Sequence[ToolSpec | Mapping[str, Any]] | None = None,
    tool_choice: str | Mapping[str, Any] | None = None,
    stop: str | Sequence[str] | None = None,
    logprobs: bool = False,
    top_logprobs: int | None = None,
    response_format: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    timeout: float | None = None,
    extra_body: Mapping[str, Any] | None = None,
    **extra: Any,
) -> Request:
    """Validate user input into a Request; every problem is an InvalidRequestError raised before any I/O.
    `extra` takes the WIRE_OPTIONS by name; other provider-specific body fields go in `extra_body`."""
    if extra:
        check_options(extra)
    if max_tokens is not None and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens <= 0):
        raise InvalidRequestError(f"max_tokens must be a positive integer, got {max_tokens!r}")
    _check_option_values(temperature, top_logprobs, timeout, stop, metadata)
    if timeout is not None:
        try:
            timeout = validate_timeout("timeout", timeout)
        except ConfigurationError as exc:
            raise InvalidRequestError(str(exc)) from None
    if isinstance(stop, str):
        stop = (stop,)
    coerced = coerce_messages(messages)
    _check_unicode(coerced)
    return Request(
        messages=coerced,
        model=model,
        max_tokens=max_tokens,
        temperature=temperature,
        stop=tuple(stop or ()),
        tools=tuple(ToolSpec.coerce(t) for t in tools or ()),
        tool_choice=tool_choice,
        logprobs=logprobs,
        top_logprobs=top_logprobs,
        response_format=response_format,
        metadata=dict(metadata or {}),
        timeout=timeout,
        extra={**extra, **(extra_body or {})},
    )


@dataclass(frozen=True, slots=True)
class HttpAttempt:
    """One HTTP request made for an attempt. `outcome`: "answered", "refused" (an error status: not billed),
    "not_sent" (no connection, or refused before sending) or "unknown" (timed out or cut after sending, or an
    unreadable answer: it may have been billed, so it is charged its worst case)."""

    outcome: str
    status: int | None = None
    latency_ms: float = 0.0
    error: str | None = None  # the error's type name

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "status": self.status, "latency_ms": self.latency_ms,
                "error": self.error}


@dataclass(frozen=True, slots=True)
class Response:
    """One model answer."""

    content: str
    model: str
    provider: str
    usage: Usage = field(default_factory=Usage)
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: FinishReason = "stop"
    logprobs: tuple[TokenLogprob, ...] | None = None  # None: the provider returned none
    latency_ms: float = 0.0
    request_id: str | None = None
    raw_finish_reason: str | None = None
    confidence: float | None = None  # a confidence the source reported itself (e.g. a recorded replay value)
    compute_seconds: float | None = None  # machine time a self-hosted provider spent (compute pricing)
    # One-time setup this call waited for (loading a local model): not the model's latency, so the
    # recorded latency leaves it out.
    setup_seconds: float = 0.0
    queued_ms: float = 0.0  # time waiting for admission before sending (not part of latency_ms)
    http_attempts: tuple[HttpAttempt, ...] = ()  # every HTTP request made for this answer, in order

    @property
    def text(self) -> str:
        return self.content

    def message(self) -> Message:
        if self.content or self.tool_calls:
            return Message(role="assistant", content=self.content or None, tool_calls=self.tool_calls)
        return Message("assistant", "")


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of streamed answer text."""

    text: str
    type: Literal["text_delta"] = "text_delta"


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a streamed tool call (index identifies the call; name arrives first, arguments in pieces)."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    type: Literal["tool_call_delta"] = "tool_call_delta"


@dataclass(frozen=True, slots=True)
class StreamDone:
    """The last event of a stream: the assembled response with usage."""

    response: Response
    type: Literal["done"] = "done"


StreamEvent = TextDelta | ToolCallDelta | StreamDone
