"""A streamed call through the one pipeline: the provider's events reach the caller as they arrive, while
`Runtime.attempt` (with the stream as its `invoke`) reserves, prices, settles and records the call once.

The call runs as its own task, so a caller that goes away mid-stream (a client disconnecting from the
gateway) cannot cut the settlement short: the upstream request is cancelled, the answer generated so far is
priced (its output counted from the text received, its input bounded from the prompt) and the call is settled
and recorded as usual. `drain()` waits for the calls still running (graceful shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

from cascadeflow.errors import BudgetExceeded
from cascadeflow.messages import (
    Request,
    Response,
    StreamDone,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
)
from cascadeflow.models import ModelConfig
from cascadeflow.runtime.call import CallContext
from cascadeflow.tokens import estimated_usage

# Streamed calls still running (held strongly: a task nobody references may be collected mid-call).
_running: set[asyncio.Task[Any]] = set()

DISCONNECTED = "client_disconnected"  # raw_finish_reason of an answer cut short because its reader went away


@dataclass(frozen=True, slots=True)
class _Finished:
    response: Response | None
    error: BaseException | None


class StreamRelay:
    """The `invoke` of a streamed attempt: relays the provider's events to a queue the reader drains and
    returns the assembled Response; when the reader goes away it cancels the upstream request and returns
    what was generated so far."""

    def __init__(self, call: CallContext, resolve_provider: Callable[[ModelConfig], Any]):
        self.call = call
        self.resolve_provider = resolve_provider
        self.events: asyncio.Queue[StreamEvent | _Finished] = asyncio.Queue()
        self.reader_gone = asyncio.Event()
        self._text: list[str] = []
        self._calls: dict[int, dict[str, Any]] = {}

    async def invoke(self, request: Request) -> Response:
        pump = asyncio.ensure_future(self._pump(request))
        gone = asyncio.ensure_future(self.reader_gone.wait())
        try:
            await asyncio.wait((pump, gone), return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            if not pump.done():  # the reader went away, or this attempt itself was cancelled
                pump.cancel()  # closes the upstream response: the provider stops generating
                with contextlib.suppress(asyncio.CancelledError):
                    await pump
        if pump.cancelled() or not pump.done():
            return self.partial(request)
        return pump.result()

    async def _pump(self, request: Request) -> Response:
        model = self.call.active_model
        provider = self.resolve_provider(model)  # type: ignore[arg-type]  # set by Runtime.attempt
        async for event in provider.stream(request):
            if isinstance(event, StreamDone):
                return event.response
            self._note(event)
            self.events.put_nowait(event)
        raise RuntimeError(f"{provider.name} stream ended without its final event")

    def _note(self, event: StreamEvent) -> None:
        if isinstance(event, TextDelta):
            self._text.append(event.text)
        elif isinstance(event, ToolCallDelta):
            slot = self._calls.setdefault(event.index, {"id": "", "name": "", "arguments": []})
            slot["id"] = event.id or slot["id"]
            slot["name"] = event.name or slot["name"]
            slot["arguments"].append(event.arguments)

    def partial(self, request: Request) -> Response:
        """The answer generated before the reader went away, with its usage counted from what arrived."""
        text = "".join(self._text)
        calls = tuple(ToolCall(id=s["id"], name=s["name"], arguments="".join(s["arguments"]))
                      for _, s in sorted(self._calls.items()))
        model = self.call.active_model
        return Response(content=text, model=request.model, provider=getattr(model, "provider", "") or "",
                        usage=estimated_usage(request, text, calls), tool_calls=calls, finish_reason="unknown",
                        raw_finish_reason=DISCONNECTED)


async def _run(runtime: Any, model: ModelConfig, request: Request, call: CallContext, relay: StreamRelay) -> None:
    try:
        response, attempt = await runtime.attempt(model, request, call, invoke=relay.invoke)
    except BaseException as exc:
        runtime.finish(call, action="stop" if isinstance(exc, BudgetExceeded) else "error", model_selected=None,
                       response=None, error=exc)
        relay.events.put_nowait(_Finished(None, exc))
        if isinstance(exc, asyncio.CancelledError):
            raise
        return
    if response.raw_finish_reason == DISCONNECTED:
        call.decide("stop", "the client went away mid-stream: upstream cancelled, charged what was generated",
                    model_requested=model.id, model_used=attempt.model)
    runtime.finish(call, action="allow", model_selected=attempt.model, response=response)
    relay.events.put_nowait(_Finished(response, None))


async def stream_attempt(runtime: Any, model: ModelConfig, request: Request,
                         call: CallContext) -> AsyncGenerator[StreamEvent, None]:
    """Stream one model's answer through `runtime.attempt` and `runtime.finish`: TextDelta / ToolCallDelta
    events, then one StreamDone. Errors of the pipeline (BudgetExceeded before sending, provider errors) are
    raised from the iteration; closing the iterator early cancels the upstream request (see StreamRelay)."""
    relay = StreamRelay(call, runtime.resolve_provider)
    task = asyncio.get_running_loop().create_task(_run(runtime, model, request, call, relay))
    _running.add(task)
    task.add_done_callback(_running.discard)
    try:
        while True:
            item = await relay.events.get()
            if isinstance(item, _Finished):
                if item.error is not None:
                    raise item.error
                assert item.response is not None
                yield StreamDone(item.response)
                return
            yield item
    finally:
        if not task.done():
            relay.reader_gone.set()


def answer_events(response: Response) -> list[StreamEvent]:
    """A finished answer as stream events (a cascade streams its accepted answer once it is validated)."""
    events: list[StreamEvent] = [TextDelta(response.content)] if response.content else []
    events += [ToolCallDelta(index=i, id=c.id, name=c.name, arguments=c.arguments)
               for i, c in enumerate(response.tool_calls)]
    events.append(StreamDone(response))
    return events


async def drain(timeout: float) -> int:
    """Wait up to `timeout` seconds for the streamed calls still running to settle; returns how many remain."""
    pending = set(_running)
    if pending:
        await asyncio.wait(pending, timeout=timeout)
    return sum(1 for t in pending if not t.done())
