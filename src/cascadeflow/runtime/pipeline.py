"""The one pipeline every call passes through: policy -> cache -> reserve -> call -> settle -> record -> store.

`Runtime.from_cache()` is the call's cache step: it runs the first tier's checks (`vet`: policy, per-call
cap) and then looks the request as it would be sent up in the response cache (a hit ends the call there);
`Runtime.attempt()` is called once per model attempt (a single call, each cascade tier, an instrumented SDK
call); `Runtime.finish()` builds the call's one audit record, stores the answer in the cache and delivers it.
Validation lives in the cascade, which calls `attempt()` for every tier, so every attempt is priced, reserved,
settled and traced exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Literal, overload

from cascadeflow.errors import (
    BudgetBackendUnavailable,
    CallDeferred,
    ConfigurationError,
    MalformedResponseError,
    ProviderError,
    ProviderTimeoutError,
)
from cascadeflow.messages import Request, Response
from cascadeflow.models import ModelConfig
from cascadeflow.pricing import PriceBook, from_micro_usd, to_micro_usd
from cascadeflow.providers.admission import DEFAULT_ADMISSION, Admission
from cascadeflow.providers.base import Provider, provider_for
from cascadeflow.runtime.admit import admitted_send, store_deferred
from cascadeflow.runtime.cache_step import CallCache
from cascadeflow.runtime.call import (
    CALL_OPTIONS,
    CURRENT_SCOPE,
    AttemptRecord,
    CacheStep,
    CallContext,
    CallOptions,
    Charge,
    Ledger,
    Policy,
    Scope,
)
from cascadeflow.runtime.cap import (
    DEFAULT_MAX_OUTPUT_TOKENS,
    MIN_USEFUL_OUTPUT_TOKENS,
    Overflow,
    estimate_worst_case,
    fit_to_cap,
    max_tokens_for,
)
from cascadeflow.runtime.offload import blocks, off_loop
from cascadeflow.runtime.resends import charge_resends, note_http, resend_reservations
from cascadeflow.stamps import new_request_id, now_iso, round_ms
from cascadeflow.tokens import checked_usage
from cascadeflow.trace.delivery import AuditDelivery, Sink
from cascadeflow.trace.metadata import normalise_metadata
from cascadeflow.trace.records import AuditRecord
from cascadeflow.trace.redact import error_text

__all__ = [  # the call's state and the step protocols live in runtime/call.py; imported from here too
    "CALL_OPTIONS", "CURRENT_SCOPE", "DEFAULT_MAX_OUTPUT_TOKENS", "AttemptOptions", "AttemptRecord", "CacheStep",
    "CallContext", "CallOptions", "Charge", "Ledger", "Overflow", "Policy", "Runtime", "Scope", "Sink", "Vetted",
    "estimate_worst_case", "may_have_been_billed",
]

log = logging.getLogger(__name__)

NOTHING_RESERVED = contextlib.nullcontext()  # reusable: the attempts that reserved nothing share it


def may_have_been_billed(exc: BaseException) -> bool:
    """Whether a failed attempt may still cost money: cancelled or timed out mid-generation, a stream cut
    off, or an unexpected error. Refusals by the provider (4xx, 5xx, rate limits, open breaker) and our own
    input checks cost nothing."""
    if isinstance(exc, (asyncio.CancelledError, ProviderTimeoutError, MalformedResponseError)):
        return True
    if isinstance(exc, CallDeferred):
        return False  # deferred before sending
    if isinstance(getattr(exc, "status_code", None), int):
        return False  # an official SDK's HTTP status error (openai/anthropic APIStatusError): a refusal
    return not isinstance(exc, (ProviderError, ConfigurationError))


@dataclass(frozen=True, slots=True)
class AttemptOptions:
    """How `Runtime.attempt` runs one attempt: its place in a cascade and the callable that sends the request
    (default: the model's provider)."""

    tier: int = 0
    role: str = "single"
    invoke: Callable[[Request], Awaitable[Response]] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Vetted:
    """What the checks before sending (`Runtime.vet`) made of one attempt: the model and request to send
    (after the policy and the per-call cap), the output limit asked for, the worst case when it was needed,
    and what the caller asked, so that the first attempt of a call vetted by its cache step is not
    checked twice."""

    model: ModelConfig
    request: Request
    original_max: int
    worst: Decimal | None
    asked_model: ModelConfig
    asked_request: Request

    def is_for(self, model: ModelConfig, request: Request) -> bool:
        return (self.asked_model is model or self.asked_model == model) and \
            (self.asked_request is request or self.asked_request == request)


class Runtime:
    """Wires pricing, ledger, policy, cache and sinks around provider calls. Cheap to construct; share one.

    The call's start (`from_cache`, when a cache is configured): the first tier's checks (`vet`: policy,
    per-call cap), then the response cache on the request as it would be sent (a hit ends the call at $0,
    reserving nothing). The steps of one attempt, in order (`attempt`): vet (policy -> per-call cap; done
    once for the first tier when the cache step ran) -> reserve -> send -> price -> settle -> policy after the
    attempt. The call's end (`finish`): build the audit record once -> run scope -> store the final answer in
    the cache -> every sink (audit sinks, metrics) through `AuditDelivery`.
    A step that is not configured is skipped by one test; no step has a second implementation elsewhere."""

    def __init__(
        self,
        *,
        price_book: PriceBook | None = None,
        ledger: Ledger | None = None,
        policy: Policy | None = None,
        sinks: tuple[Sink, ...] | list[Sink] = (),
        resolve_provider: Callable[[ModelConfig], Provider] = provider_for,
        overflow: Overflow = "shrink",
        min_useful_output_tokens: int = MIN_USEFUL_OUTPUT_TOKENS,
        lease_seconds: float = 300.0,
        listeners: list[Callable[[str, dict[str, Any]], None]] | None = None,
        cache: CacheStep | None = None,
        audit_spool: str | os.PathLike[str] | None = None,
        admission: Admission | None = None,
    ):
        self.price_book = price_book or PriceBook()
        self.ledger = ledger
        self.policy = policy
        self.delivery = AuditDelivery(sinks, spool=audit_spool)
        self.resolve_provider = resolve_provider
        self.overflow = overflow
        self.min_useful_output_tokens = min_useful_output_tokens
        self.lease_seconds = lease_seconds
        self.listeners = listeners or []
        self.cache = cache if cache is not None else CallCache()
        # the gates SDK calls are admitted through (cascadeflow's own adapters use their HttpOptions')
        self.admission = admission or DEFAULT_ADMISSION

    @property
    def sinks(self) -> list[Sink]:
        """The record consumers `finish` delivers to (audit sinks, metrics); append to add one."""
        return self.delivery.sinks

    def new_call(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        budget_limit_micro: int | None = None,
        charges: list[Charge] | None = None,
        routing_reason: str = "",
        model_requested: str | None = None,
        default_mode: str = "off",
    ) -> CallContext:
        """Start a top-level call: picks up the current run scope and the budgets that apply to it. Metadata
        is normalised to what every sink can write, or refused (InvalidRequestError) before anything is sent."""
        scope = CURRENT_SCOPE.get()
        options = CALL_OPTIONS.get()
        all_charges = list(charges) if charges else []
        if options is not None:
            all_charges.extend(options.charges)
            if budget_limit_micro is None:
                budget_limit_micro = options.budget_limit_micro
        if scope is not None:
            all_charges.extend(scope.charges())
        call = CallContext(
            request_id=new_request_id(), user_id=user_id, agent_id=agent_id,
            metadata=normalise_metadata(metadata), budget_limit_micro=budget_limit_micro, charges=all_charges,
            routing_reason=routing_reason, model_requested=model_requested, scope=scope,
            mode=scope.mode if scope is not None else default_mode,
        )
        if options is not None and options.reason:  # budget pressure changed how this call is served
            call.decide("switch_model", f"budget: {options.reason}", model_requested=model_requested)
        return call

    def from_cache(self, call: CallContext, request: Request, route: Sequence[ModelConfig], *,
                   quality: Any = None, cache: Any = None,
                   key_extra: Callable[[Request], Mapping[str, Any]] | None = None) -> Any:
        """The call's cache step (`cache`: a facade's own, else the one `cascadeflow.init` configured; without
        either it is one check). It first vets the route's first tier (`vet`: the policy and the per-call
        cap decide whether the call may happen and what it sends; a refusal is raised here, before any lookup),
        then looks up the request as it would be sent (redacted, with the model the policy chose).
        `key_extra(sent)` adds what the key must cover that the neutral request does not carry (an SDK call's
        options as sent). A hit (`cascadeflow.runtime.cache_step.Served`) reserves nothing, costs $0 and its audit
        record is already delivered; None: go on (the first `attempt` reuses the vetting). Observe mode
        records a would-be hit and goes on; a call the policy would have refused takes no cache step."""
        chosen = self.cache.cache_for(cache)
        if chosen is None:
            return None
        noted = len(call.decisions)
        vetted = call.vetted = self.vet(route[0], request, call)
        if any(d.action == "stop" and not d.applied for d in call.decisions[noted:]):
            call.decide("allow", "cache bypassed: the policy would have refused this call", applied=False)
            return None
        sent = vetted.request
        if key_extra is not None:
            sent = sent.with_(extra={**sent.extra, **key_extra(sent)})
        return self.cache.serve(self, call, sent, (vetted.model, *route[1:]), quality=quality, cache=chosen)

    def vet(self, model: ModelConfig, request: Request, call: CallContext) -> Vetted:
        """The checks that decide whether an attempt may happen and what it sends: enforce mode refuses while
        the audit sinks are known broken (AuditUnavailable), the policy may switch the model, withhold tools,
        redact or refuse (PolicyViolation, BudgetExceeded), the per-call cap shrinks max_tokens or refuses."""
        asked_model, asked_request = model, request
        if call.mode == "enforce":
            self.delivery.require_healthy()
        policy = self._policy(call)
        if policy is not None:
            model, request = policy.before_attempt(model, request, call)
        request, original_max, worst = self.fit_to_cap(model, request, call, model_name=model.name)
        return Vetted(model=model, request=request, original_max=original_max, worst=worst,
                      asked_model=asked_model, asked_request=asked_request)

    def _policy(self, call: CallContext) -> Policy | None:
        scoped = getattr(call.scope, "policy", None)
        return scoped if scoped is not None else self.policy

    def emit(self, kind: str, **data: Any) -> None:
        for listener in self.listeners:
            try:
                listener(kind, data)
            except Exception:  # a broken listener must not break a call
                log.exception("event listener failed on %s", kind)

    def max_tokens_for(self, model: ModelConfig, request: Request) -> int:
        return max_tokens_for(model, request)

    def fit_to_cap(self, model: ModelConfig, request: Request, call: CallContext, *,
                   model_name: str | None = None) -> tuple[Request, int, Decimal | None]:
        """The per-call cap under this runtime's `overflow` and minimum (see `runtime/cap.py`)."""
        return fit_to_cap(self.price_book, model, request, call, overflow=self.overflow,
                          min_useful_output_tokens=self.min_useful_output_tokens, model_name=model_name)

    def worst_case(self, model: ModelConfig, request: Request, call: CallContext) -> Decimal:
        """The worst-case cost of sending `request` (its max_tokens already fitted) to `model`."""
        return estimate_worst_case(self.price_book, model, request, max_tokens_for(model, request))[1]

    async def attempt(
        self,
        model: ModelConfig,
        request: Request,
        call: CallContext,
        *,
        tier: int = 0,
        role: str = "single",
        invoke: Callable[[Request], Awaitable[Response]] | None = None,
    ) -> tuple[Response, AttemptRecord]:
        """One model attempt through every step. Raises BudgetExceeded/PolicyViolation before sending, and
        AuditUnavailable (enforce mode) while the audit sinks are known to be broken."""
        options = AttemptOptions(tier=tier, role=role, invoke=invoke)
        policy = self._policy(call)
        vetted = None
        if tier == 0 and call.vetted is not None:  # the cache step vetted the first tier already
            vetted, call.vetted = call.vetted, None
            if not vetted.is_for(model, request):
                vetted = None
        if vetted is None:
            vetted = self.vet(model, request, call)
        model, request = vetted.model, vetted.request
        original_max, worst = vetted.original_max, vetted.worst
        reservation_id, worst = await self._reserve(model, request, call, worst)
        record = AttemptRecord(tier=tier, role=role, model=model.id, max_tokens=request.max_tokens or 0,
                               reserved_usd=worst,
                               shrunk_from=original_max if original_max != request.max_tokens else None)
        resends = (resend_reservations(self.ledger, call.charges, reservation_id, worst, self.lease_seconds)
                   if reservation_id else NOTHING_RESERVED)  # no reservation: nothing to re-reserve or release
        with resends:
            response = await self._send(model, request, call, record=record, reservation_id=reservation_id,
                                        options=options, policy=policy)
            await self._settle(reservation_id, record.cost, call)
        if policy is not None:
            policy.after_attempt(model, response, call)
        if self.listeners:
            self.emit("attempt_finished", request_id=call.request_id, model=model.id, tier=tier,
                      cost=float(record.cost), latency_ms=record.latency_ms)
        return response, record

    async def _reserve(self, model: ModelConfig, request: Request, call: CallContext,
                       worst: Decimal | None) -> tuple[str, Decimal | None]:
        """Reserve the worst case on every charge of the call: (reservation id, worst case), ('', worst)
        when no ledger budget applies (the worst case then stays None unless the per-call cap needed it).
        A blocking ledger is called in a worker thread (runtime/offload.py)."""
        ledger = self.ledger
        if ledger is None or not call.charges:
            return "", worst
        if worst is None:
            worst = self.worst_case(model, request, call)
        reservation_id = f"{call.request_id}:{len(call.attempts)}"
        await off_loop(call.inline_ledger or not blocks(ledger), ledger.reserve, reservation_id, call.charges,
                       to_micro_usd(worst), self.lease_seconds,
                       undo=lambda _: ledger.settle(reservation_id, 0))
        return reservation_id, worst

    async def _send(self, model: ModelConfig, request: Request, call: CallContext, *, record: AttemptRecord,
                    reservation_id: str, options: AttemptOptions, policy: Policy | None) -> Response:
        """Send the request and price the answer; a failed attempt is charged, settled and re-raised."""
        call.attempts.append(record)
        if call.request is None:
            call.request = request
        if self.listeners:  # the event's data is only built for someone to receive it
            self.emit("attempt_started", request_id=call.request_id, model=model.id, tier=options.tier,
                      role=options.role)
        started = time.perf_counter()
        queued_s = 0.0
        try:
            if options.invoke is not None:
                call.active_model = model  # a policy may have switched it; invoke reads it before awaiting
                if call.external_send:
                    response, queued_s = await admitted_send(self.admission, model, request, call, options.invoke)
                else:
                    response = await options.invoke(request)
            else:
                provider = self.resolve_provider(model)
                started = time.perf_counter()  # building the adapter is not the model's latency
                response = await provider.complete(request)
            record.latency_ms = (time.perf_counter() - started - response.setup_seconds - queued_s) * 1000
            note_http(record, response)
            record.queued_ms += queued_s * 1000
            # an answer it cannot price fails like one that was lost
            response = self.price_answer(model, response, record, request)
            charge_resends(record, lambda: self.worst_case(model, request, call))
        except BaseException as exc:
            record.latency_ms = (time.perf_counter() - started) * 1000
            note_http(record, exc)
            if isinstance(exc, CallDeferred):
                await store_deferred(exc, model, request, call)
            billed = self.charge_failure(model, request, call, record, exc)
            billed = charge_resends(record, lambda: self.worst_case(model, request, call)) or billed
            if billed and policy is not None:
                policy.after_failed_attempt(record, call)
            await self._settle(reservation_id, record.cost, call)
            self.emit("attempt_failed", request_id=call.request_id, model=model.id, tier=options.tier,
                      error=record.error)
            raise
        return response

    def price_answer(self, model: ModelConfig, response: Response, record: AttemptRecord,
                     request: Request) -> Response:
        """Put an answered attempt's cost, tokens, finish reason and provider request id on its record, and
        return the answer with the usage it was priced on: usage that cannot be right is estimated or flagged
        first (tokens.checked_usage)."""
        machine_s = response.compute_seconds if response.compute_seconds is not None else record.latency_ms / 1000
        usage, record.usage_note = checked_usage(request, response, record.max_tokens)
        if record.usage_note is not None:
            log.warning("%s/%s: %s", response.provider, response.model, record.usage_note)
            response = replace(response, usage=usage)
        record.cost = self.price_book.cost(model, usage, latency_s=machine_s)
        record.input_tokens = usage.input_tokens
        record.output_tokens = usage.output_tokens
        record.finish_reason = response.finish_reason
        record.provider_request_id = response.request_id
        return response

    def charge_failure(self, model: ModelConfig, request: Request, call: CallContext, record: AttemptRecord,
                       exc: BaseException) -> bool:
        """Mark a failed attempt's record; True when the attempt may still have been billed, and was charged."""
        record.status = "error"
        record.error = error_text(exc, echoes=(m.text for m in request.messages))
        if not may_have_been_billed(exc):
            return False
        # Tokens may have been generated (and billed) before the answer was lost: without a usage report the
        # only safe figure is the worst case that was reserved for this attempt.
        worst = record.reserved_usd
        if worst is None:  # nothing was reserved: the same bound, computed now that it is needed
            worst = record.reserved_usd = self.worst_case(model, request, call)
        record.cost = worst
        record.error += " (outcome unknown: charged its reserved worst case)"
        return True

    async def _settle(self, reservation_id: str, cost: Decimal, call: CallContext) -> None:
        """Settle an attempt's reservation. Off the loop, the budget left is read in the same thread hop
        (the call's record reports it, and reading it at the end on the loop would block it again)."""
        ledger = self.ledger
        if not reservation_id or ledger is None:
            return
        inline = call.inline_ledger or not blocks(ledger)
        try:
            if inline:
                ledger.settle(reservation_id, to_micro_usd(cost))
            else:
                call.remaining_micro = await off_loop(False, _settle_and_read, ledger, reservation_id,
                                                      to_micro_usd(cost), call.charges)
        except BudgetBackendUnavailable:
            # The provider answered and was paid: losing the answer would not un-spend the money. The
            # reservation (the worst case) stays held until its lease passes, so the budget stays safe.
            call.ledger_unreachable = True
            log.error("ledger unreachable while settling %s ($%s); the reservation is kept until its lease "
                      "expires", reservation_id, cost)

    def budget_remaining(self, call: CallContext) -> float | None:
        """The tightest remaining budget that applies to this call, in USD. None when no budget applies, or
        when the ledger store cannot be reached (the record says the figure is unknown rather than guess)."""
        if call.budget_limit_micro is None and (self.ledger is None or not call.charges):
            return None
        candidates: list[Decimal] = []
        if call.budget_limit_micro is not None:
            candidates.append(from_micro_usd(call.budget_limit_micro) - call.spent)
        if self.ledger is not None and call.charges:
            if call.ledger_unreachable:
                return None
            try:
                remaining = call.remaining_micro
                if remaining is None:
                    remaining = [self.ledger.remaining(c) for c in call.charges]
                candidates.extend(from_micro_usd(r) for r in remaining)
            except BudgetBackendUnavailable:
                log.error("ledger unreachable while reading the remaining budget of %s; recorded as unknown",
                          call.request_id)
                return None
        return float(min(candidates)) if candidates else None

    def audit_record(self, call: CallContext, *, action: str, model_selected: str | None,
                     response: Response | None, error: BaseException | None = None,
                     prompt: Any = None, ended: float | None = None) -> AuditRecord:
        """The call's audit record, as every sink receives it (each sink decides whether to keep content);
        `ended`: when the call ended (perf_counter), default now."""
        attempts = call.attempts
        if prompt is None and call.request is not None:
            prompt = [m.to_dict() for m in call.request.messages]
        return AuditRecord(
            timestamp=now_iso(), request_id=call.request_id, run_id=getattr(call.scope, "run_id", None),
            user_id=call.user_id, mode=call.mode, action=action, model_requested=call.model_requested,
            model_selected=model_selected, routing_reason=call.routing_reason,
            input_tokens=sum(a.input_tokens for a in attempts), output_tokens=sum(a.output_tokens for a in attempts),
            cost_usd=float(call.spent), latency_ms=round_ms(((ended or time.perf_counter()) - call.started) * 1000),
            budget_remaining=self.budget_remaining(call), price_version=self.price_book.version,
            metadata=dict(call.metadata), tiers=[a.to_dict() for a in attempts], agent_id=call.agent_id,
            error=error_text(error, echoes=_texts(call.request)) if error else None, prompt=prompt,
            answer=response.content if response is not None else None,
        )

    @overload
    def finish(self, call: CallContext, *, action: str, model_selected: str | None, response: Response | None,
               error: BaseException | None = None, prompt: Any = None,
               returns_record: Literal[True] = True) -> AuditRecord: ...

    @overload
    def finish(self, call: CallContext, *, action: str, model_selected: str | None, response: Response | None,
               error: BaseException | None = None, prompt: Any = None,
               returns_record: bool) -> AuditRecord | None: ...

    def finish(self, call: CallContext, *, action: str, model_selected: str | None, response: Response | None,
               error: BaseException | None = None, prompt: Any = None,
               returns_record: bool = True) -> AuditRecord | None:
        """End the call: tell the run scope, store the answer in the cache, and deliver the call's audit record
        to every sink (see `AuditDelivery` for what happens when one fails); returns the record. The record
        is built only for someone to read it: with no sink and `returns_record=False` (a caller that does
        not read it, the SDK bridge) nothing is built and None is returned."""
        ended = time.perf_counter()  # the scope and cache steps below are not the call's latency
        if call.scope is not None:
            call.scope.record(call)
        if call.cache_probe is not None and error is None and response is not None:
            self.cache.remember(call, response, model_selected)
        if not returns_record and not self.delivery.sinks:
            return None
        record = self.audit_record(call, action=action, model_selected=model_selected, response=response,
                                   error=error, prompt=prompt, ended=ended)
        self.delivery.deliver(record)
        return record


def _settle_and_read(ledger: Ledger, reservation_id: str, actual_micro: int,
                     charges: list[Charge]) -> list[int] | None:
    """Settle, then read what is left of each charge (None when that read fails: read again at the end)."""
    ledger.settle(reservation_id, actual_micro)
    try:
        return [ledger.remaining(c) for c in charges]
    except BudgetBackendUnavailable:
        return None


def _texts(request: Request | None) -> tuple[str, ...]:
    """The message texts of a request: what an error echoing the prompt would repeat."""
    return tuple(m.text for m in request.messages) if request is not None else ()
