"""The bridge from an official SDK call to the one pipeline: `Runtime.new_call` -> `Runtime.attempt(...,
invoke=<the original SDK method>)` -> `Runtime.finish`, for plain, streamed and async calls, in every mode.

Why the pipeline coroutine is driven by hand: a sync SDK call must run in the caller's thread (a hop to the
background loop would serialise every instrumented call), and the pipeline only suspends inside `invoke`.
So a sync call drives `Runtime.attempt` with `send()`; a stream pauses the same coroutine at a hand-off
point after the response headers arrive and resumes it with the assembled Response when the stream ends,
so reservation, pricing, settlement and the trace all happen exactly once, in `Runtime.attempt`. A paused
pipeline is held strongly (`pause`) until it is settled, so a stream dropped in a reference cycle is settled
by its finaliser instead of the collector finalising the pipeline first.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel

from cascadeflow.errors import (
    BudgetExceeded,
    CascadeflowError,
    MalformedResponseError,
    PolicyViolation,
    UnknownModelPriceError,
    UnreadableAnswer,
)
from cascadeflow.harness import state
from cascadeflow.harness.instrument.args import given
from cascadeflow.harness.instrument.vendor import Vendor
from cascadeflow.harness.pii import find_pii, redact_text
from cascadeflow.harness.scope import check_escaped
from cascadeflow.messages import Request, Response
from cascadeflow.models import ModelConfig
from cascadeflow.runtime.pipeline import CURRENT_SCOPE, AttemptRecord, CallContext, Runtime
from cascadeflow.trace.redact import safe_error_text

log = logging.getLogger(__name__)

TEXT_KEYS = ("content", "text", "arguments", "input", "instructions", "system")


class StreamAccumulator(Protocol):
    def feed(self, event: Any) -> bool: ...  # True: pass the event on to the caller

    @property
    def complete(self) -> bool: ...  # the stream's final event arrived (else it was cut off)

    def response(self, request: Request) -> Response: ...


class SdkAdapter(Protocol):
    provider: str
    api: str

    def to_request(self, kwargs: dict[str, Any]) -> Request: ...

    def enforce_kwargs(self, kwargs: dict[str, Any], view: Request, sent: Request,
                       kinds: tuple[str, ...]) -> dict[str, Any]: ...

    def to_response(self, result: Any, request: Request) -> Response: ...

    def accumulator(self, kwargs: dict[str, Any], injected_usage: bool) -> StreamAccumulator: ...

    # optional: `serves(kwargs, method)` says which calls a stored answer can answer, and
    # `cached_result(answer, request_id, kwargs, asynchronous)` builds that call's SDK result from it
    # (adapters without them are never served from the cache, nor stored)


class Handoff:
    """Awaited by a streaming `invoke`: pauses the pipeline until the stream ends and yields its Response."""

    def __await__(self) -> Any:
        response = yield self
        return response


class PipelineSuspended(RuntimeError):
    pass


# The pipelines paused at a Handoff whose stream (or lazily read response) the caller holds. Held strongly so
# that a pipeline is never garbage: a caller's stream dropped inside a reference cycle is collected together
# with everything only it reaches, and the collector would finalise the paused coroutine (or the Handoff it
# waits in) before the stream's finaliser resumes it to settle and record the call.
_paused: set[Coroutine[Any, Any, Any]] = set()


def pause(prepared: PreparedCall, coro: Coroutine[Any, Any, Any]) -> None:
    """Keep `coro`, paused at a Handoff, until `complete_stream` (or `release`) takes it back."""
    prepared.coro = coro
    _paused.add(coro)


def release(prepared: PreparedCall) -> None:
    """Stop holding a paused pipeline that could not be settled (it is left to the collector)."""
    if prepared.coro is not None:
        _paused.discard(prepared.coro)


@dataclass(slots=True, kw_only=True)
class PreparedCall:
    """One SDK call on its way through the pipeline."""

    runtime: Runtime
    call: CallContext
    model: ModelConfig
    view: Request
    kwargs: dict[str, Any]
    mode: str
    unpriced: bool = False
    result: Any = None  # what the SDK returned (kept for the caller)
    injected_usage: bool = False  # enforce mode asked a stream for a usage chunk the caller did not ask for
    manager: Any = None  # anthropic's stream manager, entered by `invoke`, exited by the caller
    coro: Coroutine[Any, Any, tuple[Response, AttemptRecord]] | None = None
    finished: bool = False
    sent: bool = False  # the SDK method was called
    answered: bool = False  # ... and returned: from here on the caller gets its result, whatever fails of ours


def active_mode() -> str:
    scope = CURRENT_SCOPE.get()
    return scope.mode if scope is not None else state.current_config().mode


@functools.lru_cache(maxsize=1024)
def sdk_model(provider: str, name: str) -> ModelConfig:
    """The ModelConfig an SDK call names (by value: building and validating one costs more than a lookup, on
    every instrumented call, and an application names few models)."""
    return ModelConfig(name=name, provider=provider)


def model_for(runtime: Runtime, vendor: Vendor, name: str, mode: str) -> tuple[ModelConfig, bool]:
    """The ModelConfig of an SDK call's model and whether it is unpriced: observe mode records a model the
    price book does not know without cost rather than failing the call; enforce mode refuses it. A call to a
    host no provider claims is unpriced: whose price would apply is unknown."""
    model = sdk_model(vendor.provider, name)
    try:
        if not vendor.known:
            raise UnknownModelPriceError(None, name, hint=vendor.why_unknown())
        runtime.price_book.rates(model)
    except UnknownModelPriceError:
        if mode == "enforce":
            raise
        return model.with_(input_price_per_million=0, output_price_per_million=0), True
    return model, False


def sdk_metadata(adapter: SdkAdapter, unpriced: bool, vendor: Vendor | None = None) -> dict[str, Any]:
    """The metadata an SDK call's audit record carries (the host, when no provider is configured for it)."""
    meta: dict[str, Any] = {"sdk": adapter.api, "unpriced": True} if unpriced else {"sdk": adapter.api}
    if vendor is not None and not vendor.known:
        meta["unknown_host"] = vendor.host
    return meta


def prepare(adapter: SdkAdapter, kwargs: dict[str, Any], mode: str, vendor: Vendor | None = None) -> PreparedCall | None:
    """Build the neutral view of an SDK call; None when it cannot be understood (the call passes through)."""
    try:
        view = adapter.to_request(kwargs)
        name = view.model  # every adapter's view carries str(kwargs["model"])
    except Exception as exc:  # noqa: BLE001 - an SDK shape we do not know must not break the user's call
        log.warning("cascadeflow: not instrumenting a %s call (%s: %s)", adapter.api, type(exc).__name__,
                    safe_error_text(str(exc)))
        return None
    runtime = state.default_runtime()
    vendor = vendor or Vendor(adapter.provider, "")
    model, unpriced = model_for(runtime, vendor, name, mode)
    call = runtime.new_call(model_requested=model.id, default_mode=mode,
                            metadata=sdk_metadata(adapter, unpriced, vendor))
    call.inline_ledger = True  # the bridge drives the pipeline by hand: it must not suspend outside the send
    if call.scope is None:
        try:
            check_escaped()
        except PolicyViolation as refused:  # recorded like every refusal, then raised before sending
            runtime.finish(call, action="stop", model_selected=None, response=None, error=refused,
                           returns_record=False)
            raise
    return PreparedCall(runtime=runtime, call=call, model=model, view=view, kwargs=kwargs, mode=mode,
                        unpriced=unpriced)


# Options that never change an answer (how the SDK sends, not what it asks): left out of the cache key. The
# messages and model are in the request the key is made of already (as the policy left them).
NOT_IN_CACHE_KEY = frozenset({"messages", "input", "instructions", "system", "model", "stream", "stream_options",
                              "store", "extra_headers", "timeout"})
RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"  # the SDKs' marker of with_raw/with_streaming_response


def _key_extra(adapter: SdkAdapter, prepared: PreparedCall, sent: Request) -> dict[str, Any]:
    """What an SDK call's cache key covers besides its neutral request: the SDK API and every other option as
    it would be sent (sampling, seed, response format, the tools as sent, extra_body, ...; in enforce mode
    after the policy's changes), so that the key covers all that can change the answer; an option JSON cannot
    express makes the call bypass the cache (see cascadeflow.cache.key)."""
    kwargs = kwargs_for(adapter, prepared, sent)
    # an option passed as None is one not passed (the SDKs' stream helpers pass extra_body=None and the like)
    options = {k: _keyable(v) for k, v in kwargs.items() if k not in NOT_IN_CACHE_KEY and given(v)}
    # the vendor is in the model id (from the client's base URL); a host no provider claims is named here
    return {"sdk_api": adapter.api, "sdk_host": prepared.call.metadata.get("unknown_host"), "sdk_options": options}


def _keyable(value: Any) -> Any:
    """A pydantic model class (the `response_format` of the `parse()` helpers) as what the SDK sends for it:
    its name and JSON schema; any other value unchanged."""
    if isinstance(value, type) and issubclass(value, BaseModel):
        return {"pydantic_model": f"{value.__module__}.{value.__qualname__}", "schema": value.model_json_schema()}
    return value


def from_cache(adapter: SdkAdapter, prepared: PreparedCall, method: str, *, asynchronous: bool = False) -> Any:
    """The cache step of an SDK call (the pipeline's, `Runtime.from_cache`: the call is vetted first):
    the cached answer as the SDK's own result (the call is then over: recorded as a hit, nothing reserved or
    sent), or None to go on. A refusal of the policy is recorded and raised here. Calls whose result a stored
    answer cannot stand in for take no cache step (`serves` of each adapter; docs/cache.md)."""
    build = getattr(adapter, "cached_result", None)
    if build is None or not build_possible(adapter, prepared.kwargs, method):
        return None
    cache = state.default_cache()  # SDK calls use the cache init(cache_config=...) configured
    if cache is None:
        return None
    try:
        served = prepared.runtime.from_cache(prepared.call, prepared.view, (prepared.model,), cache=cache,
                                             key_extra=lambda sent: _key_extra(adapter, prepared, sent))
    except BaseException as exc:
        if prepared.mode == "observe" and isinstance(exc, Exception) and not isinstance(exc, CascadeflowError):
            log.error("cascadeflow: the cache step failed (%s: %s); the observed call goes on", type(exc).__name__,
                      exc, exc_info=exc)
            prepared.call.vetted = None
            return None
        finish(prepared, None, None, exc)
        raise
    if served is None:
        return None
    prepared.finished = True  # the hit's audit record is written
    return build(served.answer, prepared.call.request_id, prepared.kwargs, asynchronous)


def build_possible(adapter: SdkAdapter, kwargs: Mapping[str, Any], method: str) -> bool:
    """Whether the adapter can hand a stored answer back as this call's result (`serves` of the adapter)."""
    serves = getattr(adapter, "serves", None)
    return serves is not None and bool(serves(kwargs, method))


def raw_mode(kwargs: Mapping[str, Any]) -> str | None:
    """"raw" for a `with_raw_response` call, "stream" for `with_streaming_response`, else None (the SDKs mark
    the first "raw", or "true" in openai's older wrapper, the second "stream")."""
    headers = kwargs.get("extra_headers")
    if headers is None or not isinstance(headers, Mapping):
        return None
    mode = headers.get(RAW_RESPONSE_HEADER)
    return None if mode is None else "stream" if mode == "stream" else "raw"


def unreadable_answer(call: CallContext, model: ModelConfig, exc: Exception) -> UnreadableAnswer:
    """The error an SDK answer the harness could not read (`to_response`, a stream accumulator, a body parser
    failing on a shape it does not know) is recorded with. A bug or a gap of ours must not break the caller's
    call: the callers of this record the attempt as failed with it (charged its worst case, since its usage
    is unknown) and hand the SDK's result back unchanged."""
    api = call.metadata.get("sdk", "SDK")
    log.warning("cascadeflow: could not read a %s answer (%s: %s); recorded as unreadable, charged its worst "
                "case, and passed to the caller unchanged", api, type(exc).__name__, safe_error_text(str(exc)))
    return UnreadableAnswer(f"could not read the {api} answer ({type(exc).__name__}: {exc}); the caller got it "
                            "unchanged", provider=model.provider, model=model.name)


def parsed_result(result: Any) -> Any:
    """The SDK's parsed object of a call's result: `with_raw_response` returns a raw-response wrapper whose
    parse() caches (so the caller's own parse() is free); a plain call returns the parsed model itself."""
    if isinstance(result, BaseModel):
        # checked first: hasattr() of a missing name on a pydantic model raises and catches inside pydantic
        return result
    return result.parse() if hasattr(result, "http_response") and hasattr(result, "parse") else result


async def parsed_result_async(result: Any) -> Any:
    """parsed_result of an async SDK call: the raw response of an async client may parse in a coroutine
    (anthropic's AsyncAPIResponse; its parse() caches too)."""
    if isinstance(result, BaseModel):
        return result
    parsed = parsed_result(result)
    return await parsed if inspect.isawaitable(parsed) else parsed


def redaction_kinds(call: CallContext) -> tuple[str, ...]:
    kinds: list[str] = []
    scope = call.scope
    for s in scope.chain() if hasattr(scope, "chain") else ():
        if s.compliance is not None and s.compliance.pii_action == "redact":
            kinds.extend(k for k in s.compliance.pii_kinds if k not in kinds)
    return tuple(kinds)


def kwargs_for(adapter: SdkAdapter, prepared: PreparedCall, sent: Request) -> dict[str, Any]:
    """The kwargs to send: untouched in observe mode (the same object), policy changes applied in enforce."""
    if prepared.mode != "enforce":
        return prepared.kwargs
    return adapter.enforce_kwargs(prepared.kwargs, prepared.view, sent, redaction_kinds(prepared.call))


def finish(prepared: PreparedCall, response: Response | None, record: AttemptRecord | None,
           error: BaseException | None = None) -> None:
    if prepared.finished:
        return
    prepared.finished = True
    if error is None:
        action = "allow"
    else:
        action = "stop" if isinstance(error, (BudgetExceeded, PolicyViolation)) else "error"
    prepared.runtime.finish(prepared.call, action=action, model_selected=record.model if record else None,
                            response=response, error=error, returns_record=False)


def answered_anyway(prepared: PreparedCall, exc: BaseException) -> bool:
    """Whether the SDK had already answered when the harness raised `exc` (reading, pricing, settling or
    accounting the answer): then the call is recorded with the error and the caller gets the SDK's result, in
    either mode. The money is spent; taking the answer from the caller would not bring it back."""
    if not prepared.answered or not isinstance(exc, Exception):
        return False
    if not isinstance(exc, UnreadableAnswer):  # that one was logged where it was made
        log_answer_failure(prepared.call, exc)
    finish(prepared, None, None, exc)
    return True


def stream_cut_off(prepared: PreparedCall) -> MalformedResponseError:
    """The error a stream that ended before its final event is recorded with (the caller sees no error: the
    SDK ended the stream normally)."""
    api = prepared.call.metadata.get("sdk", "SDK")
    log.warning("cascadeflow: %s stream ended before its final event (cut off); recorded as failed and "
                "charged its worst case", api)
    return MalformedResponseError(f"the {api} stream ended before its final event (cut off midway)",
                                  provider=prepared.model.provider, model=prepared.model.name)


def log_answer_failure(call: CallContext, exc: Exception) -> None:
    log.error("cascadeflow: recording an answered %s call failed (%s: %s); the caller gets the answer",
              call.metadata.get("sdk"), type(exc).__name__, exc, exc_info=exc)


def passes_unobserved(mode: str, exc: BaseException, step: str) -> bool:
    """Whether an observe-mode call that the harness failed on before sending (`exc`, raised while `step`)
    goes on to the SDK unobserved: observe mode must not break traffic. Never in enforce mode, which fails
    closed, and never for a deliberate error (a CascadeflowError: a budget, a policy, a configuration)."""
    if mode != "observe" or not isinstance(exc, Exception) or isinstance(exc, CascadeflowError):
        return False
    log.error("cascadeflow: %s failed (%s: %s); the observed call is sent unobserved", step, type(exc).__name__,
              exc, exc_info=exc)
    return True


def drive_sync(coro: Coroutine[Any, Any, Any], value: Any = None, exc: BaseException | None = None) -> Any:
    """Run the pipeline coroutine until it returns (StopIteration value) or pauses at a Handoff."""
    try:
        yielded = coro.throw(exc) if exc is not None else coro.send(value)
    except StopIteration as stop:
        return stop.value
    if isinstance(yielded, Handoff):
        return yielded
    coro.close()
    raise PipelineSuspended("the cascadeflow pipeline suspended inside a synchronous SDK call; use a "
                            "synchronous ledger backend (memory, sqlite, redis, postgresql) and sinks")


class DriveAsync:
    """`await DriveAsync(coro)`: like awaiting coro, but returns the Handoff instead of passing it to the loop."""

    def __init__(self, coro: Coroutine[Any, Any, Any]):
        self.coro = coro

    def __await__(self) -> Any:
        send: Any = None
        error: BaseException | None = None
        while True:
            try:
                yielded = self.coro.throw(error) if error is not None else self.coro.send(send)
            except StopIteration as stop:
                return stop.value
            if isinstance(yielded, Handoff):
                return yielded
            try:
                send, error = (yield yielded), None
            except BaseException as exc:  # noqa: BLE001 - cancellation and friends go into the pipeline
                send, error = None, exc


def complete_stream(prepared: PreparedCall, response: Response | None, error: BaseException | None) -> None:
    """Resume the paused pipeline with the stream's Response (or its error) and write the audit record."""
    if prepared.coro is None or prepared.finished:
        return
    coro, prepared.coro = prepared.coro, None
    _paused.discard(coro)
    if error is not None:
        try:
            drive_sync(coro, exc=error)  # the pipeline records the failed attempt and re-raises it
        except BaseException as raised:  # noqa: BLE001 - the stream's own error reaches the caller already
            if raised is not error:
                log.warning("cascadeflow: settling a failed stream raised %s", type(raised).__name__)
        finish(prepared, None, None, error)
        return
    try:
        result = drive_sync(coro, value=response)
    except BaseException as exc:
        finish(prepared, None, None, exc)
        if not isinstance(exc, Exception):
            raise
        # the caller has had the whole stream: an error of ours in settling it is logged, not raised at its end
        log.error("cascadeflow: settling a %s stream failed (%s: %s)", prepared.call.metadata.get("sdk"),
                  type(exc).__name__, exc, exc_info=exc)
        return
    got, record = result
    finish(prepared, got, record)


def settle_stream(prepared: PreparedCall, read: Callable[[], Response]) -> None:
    """`complete_stream` with the Response `read()` assembles from what the caller was given; when reading it
    fails, the call is settled as an unreadable answer instead of the failure reaching the caller."""
    if prepared.coro is None or prepared.finished:
        return
    try:
        response = read()
    except Exception as exc:  # noqa: BLE001 - ours, not the caller's
        complete_stream(prepared, None, unreadable_answer(prepared.call, prepared.model, exc))
        return
    complete_stream(prepared, response, None)


def redact_strings(value: Any, kinds: tuple[str, ...], *, every: bool = False) -> Any:
    """A copy of an SDK message structure with personal data redacted in its text fields (all strings when
    `every`); image URLs and other non-text fields are left untouched."""
    if isinstance(value, str):
        return redact_text(value, kinds)[0]
    if isinstance(value, list):
        return [redact_strings(v, kinds, every=every) for v in value]
    if isinstance(value, dict):
        return {k: (redact_strings(v, kinds, every=every or isinstance(v, dict))
                    if every or k in TEXT_KEYS or k == "function" or isinstance(v, list)
                    else _redacted_name(v, kinds) if k == "name" else v)
                for k, v in value.items()}
    return value


def _redacted_name(name: Any, kinds: tuple[str, ...]) -> Any:
    """A message's `name` (a participant's name, sent to the provider): replaced whole when it holds personal
    data, since the APIs accept only a bare identifier there."""
    return "redacted" if isinstance(name, str) and find_pii(name, kinds) else name


Invoke = Callable[[Request], Coroutine[Any, Any, Response]]
