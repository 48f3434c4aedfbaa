"""The state of one call as it passes the pipeline (`CallContext`, `AttemptRecord`; `Charge` comes from the
budget ledger), the protocols of the steps it meets (ledger, policy, run scope, cache step), and the context
variables through which a run scope or a facade's budgets reach `Runtime.new_call`; `runtime.pipeline` re-exports them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, Protocol

from cascadeflow.budget.ledger import Charge
from cascadeflow.messages import HttpAttempt, Request, Response
from cascadeflow.models import ModelConfig
from cascadeflow.stamps import now_iso, round_ms
from cascadeflow.trace.records import DecisionRecord


class Ledger(Protocol):
    def reserve(self, request_id: str, charges: list[Charge], amount_micro: int, lease_seconds: float) -> Any: ...

    def settle(self, request_id: str, actual_micro: int) -> Any: ...

    def remaining(self, charge: Charge) -> int: ...


class Policy(Protocol):
    """Run-scope policy (harness): may switch the model, strip tools, redact, or stop."""

    def before_attempt(self, model: ModelConfig, request: Request, call: CallContext) -> tuple[ModelConfig, Request]: ...

    def after_attempt(self, model: ModelConfig, response: Response, call: CallContext) -> None: ...

    def after_failed_attempt(self, record: AttemptRecord, call: CallContext) -> None: ...  # charged, not answered


class Scope(Protocol):
    """A harness run scope, as the runtime sees it (set by `cascadeflow.run()` / `@cascadeflow.agent`)."""

    run_id: str
    mode: str  # "off" | "observe" | "enforce"

    @property
    def policy(self) -> Policy | None: ...  # read only: a scope may hold a richer policy type

    def charges(self) -> list[Charge]: ...  # this scope's budget and every enclosing scope's

    def record(self, call: CallContext) -> None: ...  # called once per finished call


CURRENT_SCOPE: ContextVar[Scope | None] = ContextVar("cascadeflow_scope", default=None)


@dataclass(frozen=True, slots=True)
class CallOptions:
    """Budgets a facade (CascadeFlow, BudgetSession) attaches to the calls made while it is active, so an
    engine such as CascadeAgent picks them up in `Runtime.new_call()` without threading them through."""

    budget_limit_micro: int | None = None
    charges: tuple[Charge, ...] = ()
    raise_bar: float = 0.0  # added to the cascade's acceptance threshold (budget pressure)
    cheapest_only: bool = False  # serve only the first tier (budget exhausted, configured to degrade)
    reason: str = ""


CALL_OPTIONS: ContextVar[CallOptions | None] = ContextVar("cascadeflow_call_options", default=None)


@dataclass(slots=True, kw_only=True)
class AttemptRecord:
    """What one attempt did; the cascade adds its validation verdict."""

    tier: int
    role: str
    model: str
    max_tokens: int
    reserved_usd: Decimal | None  # the worst case reserved or checked; None when nothing needed it
    cost: Decimal = Decimal(0)
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: float = 0.0
    status: Literal["ok", "error", "refused"] = "ok"
    error: str | None = None
    finish_reason: str | None = None
    provider_request_id: str | None = None
    shrunk_from: int | None = None  # max_tokens lowered to fit a per-call cap
    usage_note: str | None = None  # reported usage that cannot be right (see tokens.checked_usage)
    queued_ms: float = 0.0  # waited for admission before sending (not in latency_ms)
    http_attempts: tuple[HttpAttempt, ...] = ()  # the HTTP requests the provider made for this attempt

    def to_dict(self) -> dict[str, Any]:
        extra = {"usage_note": self.usage_note} if self.usage_note is not None else {}
        entry: dict[str, Any] = {
            "tier": self.tier, "role": self.role, "model": self.model, "max_tokens": self.max_tokens,
            "cost_usd": float(self.cost), "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens, "latency_ms": round_ms(self.latency_ms),
            "status": self.status, "error": self.error, "finish_reason": self.finish_reason,
            "shrunk_from": self.shrunk_from, **extra,
        }
        # The usual attempt (one request, answered, not queued) keeps the plain shape; any other lists them.
        if self.queued_ms or len(self.http_attempts) > 1 or any(a.outcome != "answered" for a in self.http_attempts):
            entry["queued_ms"] = round_ms(self.queued_ms)
            entry["http_attempts"] = [a.to_dict() for a in self.http_attempts]
        return entry


@dataclass(slots=True, kw_only=True)
class CallContext:
    """State of one top-level call (which may make several attempts)."""

    request_id: str
    user_id: str | None = None
    agent_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    budget_limit_micro: int | None = None  # per-call cap over all attempts
    charges: list[Charge] = field(default_factory=list)
    routing_reason: str = ""
    model_requested: str | None = None
    attempts: list[AttemptRecord] = field(default_factory=list)
    decisions: list[DecisionRecord] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    scope: Any = None  # the harness run scope, when inside one
    mode: str = "off"
    request: Request | None = None  # the first request sent; audit sinks that record content read it
    active_model: ModelConfig | None = None  # the model being sent (after policy), for `invoke` callbacks
    ledger_unreachable: bool = False  # a settlement failed: the remaining budget is unknown
    inline_ledger: bool = False  # ledger calls stay in the caller's thread (a pipeline driven by hand)
    # who sends: "" cascadeflow's HTTP layer (which takes its admission slot itself); "sync" / "async" an SDK's
    # own client, called synchronously / from a coroutine: the pipeline takes the slot around the send
    external_send: Literal["", "sync", "async"] = ""
    remaining_micro: list[int] | None = None  # each charge's budget left, read with the last settlement
    cache_probe: Any = None  # the cache step's lookup that missed: the call's answer is stored under it
    vetted: Any = None  # the first tier's Vetted checks made by the cache step, used by the first attempt

    @property
    def spent(self) -> Decimal:
        return sum((a.cost for a in self.attempts), Decimal(0))

    def decide(self, action: str, reason: str, *, model_requested: str | None = None,
               model_used: str | None = None, applied: bool = True, **details: Any) -> DecisionRecord:
        record = DecisionRecord(
            step=len(self.decisions) + 1, timestamp=now_iso(), action=action, reason=reason,
            model_requested=model_requested, model_used=model_used, applied=applied,
            run_id=getattr(self.scope, "run_id", None), request_id=self.request_id, details=details,
        )
        self.decisions.append(record)
        return record


class CacheStep(Protocol):
    """The call-level response cache (default `cascadeflow.runtime.cache_step.CallCache`). `Runtime.from_cache` asks
    `cache_for` which cache a call uses (None: no step), vets the first tier (policy, per-call cap) and then
    calls `serve` with the request as it would be sent: a hit is the call's whole answer ($0, its audit record
    already delivered); a miss leaves `call.cache_probe` set. `remember` runs in `Runtime.finish` when the
    call ends with an answer, and stores that final answer (for a cascade: the accepted tier's)."""

    def cache_for(self, cache: Any) -> Any: ...

    def serve(self, runtime: Any, call: CallContext, request: Request, route: Sequence[ModelConfig], *,
              quality: Any = None, cache: Any = None) -> Any: ...

    def remember(self, call: CallContext, response: Response, model_selected: str | None) -> bool: ...
