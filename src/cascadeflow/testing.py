"""Test doubles shipped for users: providers that answer from a script, an in-memory ledger, audit capture.

`ScriptedProvider` answers each call with the next scripted reply (text, a Response, an exception or a
callable of the Request); `FakeProvider` answers every call the same way. Both record the requests they saw.
Use them with `Runtime(resolve_provider=...)` or `CascadeAgent(..., runtime=Runtime(resolve_provider=...))`.
`MemoryLedger` is the in-process budget ledger; `capture_audit(runtime)` collects every audit record.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from cascadeflow.budget.backends.memory import MemoryLedger
from cascadeflow.messages import (
    Request,
    Response,
    StreamDone,
    StreamEvent,
    TextDelta,
    TokenLogprob,
    Usage,
)
from cascadeflow.models import ModelConfig
from cascadeflow.tokens import estimate_input_tokens

Reply = str | Response | BaseException | Callable[[Request], str | Response]


def make_response(request: Request, text: str, *, provider: str = "fake", logprob: float | None = None,
                  finish_reason: str = "stop", latency_ms: float = 0.0) -> Response:
    """A Response for `text` with word-count usage, and per-word logprobs when `logprob` is given."""
    words = text.split()
    logprobs = tuple(TokenLogprob(w, logprob) for w in words) if logprob is not None else None
    return Response(
        content=text,
        model=request.model,
        provider=provider,
        usage=Usage(input_tokens=max(1, estimate_input_tokens(request.messages) // 4),
                    output_tokens=max(1, len(words))),
        finish_reason=finish_reason,  # type: ignore[arg-type]
        logprobs=logprobs,
        latency_ms=latency_ms,
        request_id=f"fake-{id(request)}",
    )


class ScriptedProvider:
    """Answers calls from a script of replies, per model id or shared; records every request."""

    def __init__(self, replies: Iterable[Reply] | Mapping[str, Iterable[Reply]] = (), *, name: str = "fake",
                 delay: float = 0.0, default: Reply | None = None):
        self.name = name
        self.delay = delay
        self.default = default
        self.requests: list[Request] = []
        if isinstance(replies, Mapping):
            self._by_model = {k: deque(v) for k, v in replies.items()}
            self._shared: deque[Reply] = deque()
        else:
            self._by_model = {}
            self._shared = deque(replies)

    def _next(self, request: Request) -> Reply:
        queue = self._by_model.get(request.model)
        if queue:
            return queue.popleft()
        if self._shared:
            return self._shared.popleft()
        if self.default is not None:
            return self.default
        raise AssertionError(f"ScriptedProvider has no reply left for model {request.model!r}")

    async def complete(self, request: Request) -> Response:
        self.requests.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        reply = self._next(request)
        if callable(reply) and not isinstance(reply, BaseException):
            reply = reply(request)
        if isinstance(reply, BaseException):
            raise reply
        if isinstance(reply, Response):
            return replace(reply, model=reply.model or request.model)
        return make_response(request, str(reply), provider=self.name)

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        response = await self.complete(request)
        for i, word in enumerate(response.content.split(" ")):
            yield TextDelta(word if i == 0 else " " + word)
        yield StreamDone(response)

    def resolver(self) -> Callable[[ModelConfig], ScriptedProvider]:
        """A `resolve_provider` function that sends every model to this provider."""
        return lambda cfg: self


class FakeProvider(ScriptedProvider):
    """Answers every call with the same reply."""

    def __init__(self, reply: Reply = "ok", **kw: Any):
        super().__init__((), default=reply, **kw)


class AuditCapture:
    """An audit sink that keeps records in memory (see `capture_audit`)."""

    def __init__(self) -> None:
        self.records: list[Any] = []

    def write(self, record: Any) -> None:
        self.records.append(record)

    def dicts(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.records]


def capture_audit(runtime: Any) -> AuditCapture:
    """Add an in-memory audit sink to `runtime` and return it; its `.records` fill as calls finish."""
    capture = AuditCapture()
    runtime.sinks.append(capture)
    return capture


__all__ = ["AuditCapture", "FakeProvider", "MemoryLedger", "ScriptedProvider", "capture_audit", "make_response"]
