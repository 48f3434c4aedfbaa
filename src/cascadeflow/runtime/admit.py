"""Admission for the sends the HTTP layer does not make (an official SDK's own client), and the storing of a
deferred call, both steps of `Runtime.attempt`.

cascadeflow's HTTP adapters take their admission slot themselves (providers/http.py). An instrumented SDK call
sends through the SDK's client, so the pipeline takes the slot of the same (provider, model) gate around the
send instead: SDK calls and cascadeflow's own calls to one provider share its in-flight bound, its queue and
its rate limits. A synchronous SDK call waits in its own thread; the slot is held until the SDK returns (for
a stream, until the stream ends, when the pipeline resumes).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from cascadeflow.errors import CallDeferred
from cascadeflow.messages import Request, Response
from cascadeflow.models import ModelConfig
from cascadeflow.providers.admission import Admission, priority_of
from cascadeflow.runtime.call import CallContext
from cascadeflow.runtime.offload import off_loop
from cascadeflow.tokens import estimate_input_tokens

# How long an SDK call may wait for admission when the request sets no timeout (the SDKs' own default total
# timeout is ten minutes as well).
DEFAULT_ADMISSION_WAIT_S = 600.0


async def admitted_send(admission: Admission, model: ModelConfig, request: Request, call: CallContext,
                        send: Callable[[Request], Awaitable[Response]]) -> tuple[Response, float]:
    """`send(request)` holding a slot of the model's gate: (response, seconds queued for the slot). Raises
    AdmissionRefused when the wait would pass the request's deadline, CallDeferred when the gate defers a
    low-severity call (only in enforce mode: observe mode must not change what the application sends)."""
    gate = admission.gate(model.provider or "", model.name)
    deadline = time.monotonic() + (request.timeout or DEFAULT_ADMISSION_WAIT_S)
    what = f"{model.provider}/{model.name}"
    priority = priority_of(call.metadata)
    may_defer = call.mode == "enforce"
    if call.external_send == "sync":
        queued = gate.acquire_blocking(priority=priority, deadline=deadline, what=what, may_defer=may_defer)
    else:
        queued = await gate.acquire(priority=priority, deadline=deadline, what=what, may_defer=may_defer,
                                    tokens=lambda: _rate_tokens(request))
    try:
        return await send(request), queued
    finally:
        gate.release()


def _rate_tokens(request: Request) -> int:
    return estimate_input_tokens(request.messages, request.tools) + (request.max_tokens or 0)


def deferred_payload(model: ModelConfig, request: Request, call: CallContext, priority: int) -> dict[str, Any]:
    """What a deferred call is stored as: enough to send it again (messages, model, options, metadata) and
    to trace it to the call that was deferred."""
    return {
        "request_id": call.request_id, "model": model.id, "model_requested": call.model_requested,
        "messages": [m.to_dict() for m in request.messages], "max_tokens": request.max_tokens,
        "temperature": request.temperature, "metadata": dict(call.metadata), "user_id": call.user_id,
        "agent_id": call.agent_id, "priority": priority,
    }


async def store_deferred(error: CallDeferred, model: ModelConfig, request: Request, call: CallContext) -> None:
    """Store a deferred call in its DeferredQueue (once; the item id goes on the error). A store that fails
    raises, so the caller learns the call was neither sent nor stored."""
    if error.item_id is not None or error.queue is None:
        return
    error.item_id = await off_loop(call.inline_ledger, error.queue.enqueue,
                                   deferred_payload(model, request, call, error.priority), str(error))
