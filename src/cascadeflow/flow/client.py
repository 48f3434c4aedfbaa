"""`CascadeFlow`: the facade for single calls — `cf.complete(model=..., messages=..., budget_limit=0.05)`.

It turns user input into a validated Request, picks the route (one model, a cascade, or a router's
decision), attaches the budgets that apply (per call, session, user, agent, global) and sends everything
through the runtime pipeline. Nothing is sent before the request and the budgets have been checked.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cascadeflow.cache import open_cache
from cascadeflow.errors import BudgetExceeded, ConfigurationError
from cascadeflow.messages import (
    Message,
    Request,
    Response,
    StreamEvent,
    ToolCall,
    ToolSpec,
    Usage,
    build_request,
)
from cascadeflow.models import ModelConfig, as_model_config
from cascadeflow.pricing import PriceBook, usd_to_micro_limit
from cascadeflow.runtime.budgets import budget_call_options, call_options, refusals_reported
from cascadeflow.runtime.pipeline import Charge, Overflow, Runtime
from cascadeflow.sync import run_sync

ModelSpec = str | ModelConfig | Sequence[str | ModelConfig] | Any  # Any: a routing.Route


@dataclass(slots=True)
class CompletionResult:
    """The answer of one `complete()` call, with what it cost and how it was decided."""

    content: str
    model: str  # 'provider/model' that produced the answer
    cost_decimal: Decimal  # exact USD over every attempt
    usage: Usage
    latency_ms: float
    request_id: str
    routing_reason: str
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str = "stop"
    tiers: list[dict[str, Any]] = field(default_factory=list)
    draft_accepted: bool | None = None  # None: no cascade
    budget_remaining: float | None = None
    response: Response | None = None
    cache_hit: bool = False  # served from the response cache (cost 0)

    @property
    def cost(self) -> float:
        """USD over every attempt (exact: `cost_decimal`)."""
        return float(self.cost_decimal)

    @property
    def cost_usd(self) -> float:
        return float(self.cost_decimal)

    @property
    def text(self) -> str:
        return self.content


def _route_of(model: ModelSpec, router: Any, request: Request, routing_reason: str | None):
    """(tiers, reason, label) for this call. A Route object carries its own reason."""
    if model is None:
        if router is None:
            raise ConfigurationError("complete() needs model= (a model id, a ModelConfig, a list of them for "
                                     "a cascade, or a Route) or a router= to choose one")
        route = router.route(request)
        if route is None:
            raise ConfigurationError(f"router {type(router).__name__} found no route for this request and has "
                                     f"no default; give it a default model")
        return route.models, routing_reason or route.reason, route.label
    if hasattr(model, "models") and hasattr(model, "reason"):  # routing.Route
        return tuple(model.models), routing_reason or model.reason, getattr(model, "label", None)
    if isinstance(model, (str, ModelConfig)):
        return (as_model_config(model),), routing_reason or "model chosen by the caller", None
    if isinstance(model, Sequence) and model:
        tiers = tuple(as_model_config(m) for m in model)
        return tiers, routing_reason or f"cascade of {len(tiers)} tiers", None
    raise ConfigurationError(f"model must be 'provider/model', a ModelConfig, a non-empty list of them or a "
                             f"Route; got {model!r}")


def _print_single(request_id: str, model: ModelConfig, reason: str, attempt: Any, latency_ms: float) -> None:
    """verbose=True for a one-model call: the same lines a cascade prints (its choice, then its numbers)."""
    from cascadeflow.cascade import events as ev

    printer = ev.VerbosePrinter()
    printer(ev.CascadeEvent(kind=ev.MODEL_SELECTED, request_id=request_id, reason=reason, model=model.id,
                            tier=0, data={"model_name": model.name, "target": model.name}))
    printer(ev.CascadeEvent(kind=ev.COMPLETED, request_id=request_id, reason="allow", model=attempt.model,
                            tier=0,
                            data={"model_name": attempt.model.split("/", 1)[-1],
                                  "tokens": attempt.input_tokens + attempt.output_tokens,
                                  "cost": attempt.cost, "latency_ms": latency_ms, "savings_pct": 0.0}))


def _result_response(result: CompletionResult) -> Response:
    """The answer of a finished call as a Response (a cascade's result carries its parts, not one)."""
    if result.response is not None:
        return result.response
    provider, _, name = result.model.partition("/")
    return Response(content=result.content, model=name or result.model, provider=provider, usage=result.usage,
                    tool_calls=result.tool_calls, finish_reason=result.finish_reason,  # type: ignore[arg-type]
                    latency_ms=result.latency_ms, request_id=result.request_id)


class _FixedRouter:
    """Hands a route already chosen by CascadeFlow to the cascade engine."""

    def __init__(self, route: Any):
        self._route = route

    def route(self, request: Request) -> Any:
        return self._route


class CascadeFlow:
    """Route, cascade, budget and audit LLM calls. One instance per application is enough."""

    def __init__(
        self,
        *,
        runtime: Runtime | None = None,
        ledger: str | Any | None = None,
        budget_config: Any = None,
        user_budgets: Mapping[str, Any] | None = None,
        quality_config: Any = None,
        router: Any = None,
        price_book: PriceBook | None = None,
        overflow: Overflow = "shrink",
        audit: Any = None,
        verbose: bool = False,
        cache_config: Any = None,
    ):
        self._runtime = runtime
        self._ledger_spec = ledger
        self._price_book = price_book
        self._overflow = overflow
        self._audit = audit
        self.budget_config = budget_config
        self.user_budgets = dict(user_budgets or {})
        self.quality_config = quality_config
        self.router = router
        self.verbose = verbose
        self._budgets = None  # budget.BudgetPolicy, built lazily when any budget is configured
        self.cache = open_cache(cache_config)  # None: the cache cascadeflow.init() configured, if any

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            self._runtime = self._build_runtime()
        return self._runtime

    def _build_runtime(self) -> Runtime:
        """The harness's runtime (configured by cascadeflow.init), adjusted by this instance's options.

        Every call writes an audit record to the harness's sinks: by default the JSONL log at
        $CASCADEFLOW_AUDIT_PATH or .cascadeflow/audit.jsonl (see `trace.default_sinks`), none when the
        harness was told not to audit. `audit=False` turns it off for this instance; `audit="path"` picks
        another log."""
        from cascadeflow.harness import default_runtime
        from cascadeflow.trace.audit import open_sinks

        base = default_runtime()
        ledger = self._ledger_spec
        if isinstance(ledger, str):
            from cascadeflow.budget import open_ledger

            ledger = open_ledger(ledger)
        sinks = list(base.sinks)
        if self._audit is False:
            sinks = []
        elif self._audit is not None:
            sinks = open_sinks(self._audit)
        if ledger is None and self._price_book is None and self._overflow == base.overflow \
                and sinks == list(base.sinks):
            return base
        return Runtime(price_book=self._price_book or base.price_book, ledger=ledger or base.ledger,
                       policy=base.policy, sinks=sinks, resolve_provider=base.resolve_provider,
                       overflow=self._overflow, listeners=base.listeners)

    async def acomplete(
        self,
        model: ModelSpec = None,
        messages: str | Sequence[Message | Mapping[str, Any]] | None = None,
        *,
        budget_limit: float | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        tools: Sequence[ToolSpec | Mapping[str, Any]] | None = None,
        tool_choice: Any = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        routing_reason: str | None = None,
        router: Any = None,
        quality_config: Any = None,
        _charges: Sequence[Charge] = (),
        **extra: Any,
    ) -> CompletionResult:
        if messages is None:
            raise ConfigurationError("complete() needs messages= (a string or a list of messages)")
        request = build_request(messages, max_tokens=max_tokens, temperature=temperature, tools=tools,
                                tool_choice=tool_choice, metadata=metadata, **extra)
        tiers, reason, _label = _route_of(model, router or self.router, request, routing_reason)
        options = budget_call_options(self.budget_config, self.runtime.ledger, user_budgets=self.user_budgets,
                                      user_id=user_id, agent_id=agent_id)
        limit = usd_to_micro_limit(budget_limit, "budget_limit") if budget_limit is not None else None
        with call_options(options, budget_limit_micro=limit, extra_charges=_charges) as options, \
                refusals_reported(self.budget_config, options):
            if options.cheapest_only:
                tiers, reason = tiers[:1], f"{reason}; {options.reason}"
            if len(tiers) > 1:
                return await self._cascade(tiers, request, reason, user_id, agent_id, quality_config)
            return await self._single(tiers[0], request, reason, user_id, agent_id)

    async def astream(
        self,
        model: ModelSpec = None,
        messages: str | Sequence[Message | Mapping[str, Any]] | None = None,
        *,
        budget_limit: float | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        routing_reason: str | None = None,
        router: Any = None,
        quality_config: Any = None,
        _charges: Sequence[Charge] = (),
        **options: Any,
    ) -> AsyncGenerator[StreamEvent, None]:
        """`acomplete`, streamed: TextDelta / ToolCallDelta events as the model produces them, then one
        StreamDone with the answer, its usage and `routing_reason`. A one-model route streams from the provider
        through the pipeline (`runtime.streaming`); a cascade validates its draft before anything is shown, so
        it streams the accepted answer once it is known. Closing the iterator early cancels the upstream
        request and charges what was generated."""
        from cascadeflow.runtime.streaming import answer_events, stream_attempt

        if messages is None:
            raise ConfigurationError("astream() needs messages= (a string or a list of messages)")
        request = build_request(messages, **options)
        tiers, reason, _label = _route_of(model, router or self.router, request, routing_reason)
        if len(tiers) > 1:
            result = await self.acomplete(list(tiers), list(request.messages), budget_limit=budget_limit,
                                          user_id=user_id, agent_id=agent_id, routing_reason=reason,
                                          quality_config=quality_config, _charges=_charges, **options)
            for event in answer_events(_result_response(result)):
                yield event
            return
        budgets = budget_call_options(self.budget_config, self.runtime.ledger, user_budgets=self.user_budgets,
                                      user_id=user_id, agent_id=agent_id)
        limit = usd_to_micro_limit(budget_limit, "budget_limit") if budget_limit is not None else None
        with call_options(budgets, budget_limit_micro=limit, extra_charges=_charges), \
                refusals_reported(self.budget_config, budgets):
            call = self.runtime.new_call(user_id=user_id, agent_id=agent_id, metadata=request.metadata,
                                         routing_reason=reason, model_requested=tiers[0].id)
        served = self._stream_cache_step(call, request, tiers[0])
        if served is not None:  # the cached answer as stream events, its usage in the final one; cost $0
            for event in answer_events(served.answer.response()):
                yield event
            return
        call.decide("allow", reason, model_requested=tiers[0].id, model_used=tiers[0].id)
        # aclosing: a caller closing this iterator closes the attempt's at once (cancelling the upstream request)
        async with contextlib.aclosing(stream_attempt(self.runtime, tiers[0], request, call)) as events:
            async for event in events:
                yield event

    def _stream_cache_step(self, call: Any, request: Request, model: ModelConfig) -> Any:
        """The pipeline's cache step for a streamed call, as `_single` takes it: a hit (`Served`) or None; a
        miss leaves its probe on the call, so the streamed answer is stored when the call finishes. A refusal
        of the vetting is recorded and raised, before anything is sent."""
        try:
            return self.runtime.from_cache(call, request, (model,), cache=self.cache)
        except BaseException as exc:
            self.runtime.finish(call, action="stop" if isinstance(exc, BudgetExceeded) else "error",
                                model_selected=None, response=None, error=exc)
            raise

    def complete(self, model: ModelSpec = None, messages: Any = None, **kwargs: Any) -> CompletionResult:
        """Synchronous twin of `acomplete`."""
        return run_sync(self.acomplete(model, messages, **kwargs), what="CascadeFlow.complete()")

    async def _single(self, model: ModelConfig, request: Request, reason: str, user_id: str | None,
                      agent_id: str | None) -> CompletionResult:
        runtime = self.runtime
        call = runtime.new_call(user_id=user_id, agent_id=agent_id, metadata=request.metadata,
                                routing_reason=reason, model_requested=model.id)
        try:
            # the cache step vets the call first (policy, per-call cap): a refused call is refused on a hit too
            served = runtime.from_cache(call, request, (model,), cache=self.cache)
            if served is not None:
                answer = served.answer
                return CompletionResult(
                    content=answer.content, model=answer.model, cost_decimal=Decimal(0), usage=answer.usage,
                    latency_ms=served.record.latency_ms, request_id=call.request_id, routing_reason=reason,
                    tool_calls=answer.tool_calls, finish_reason=answer.finish_reason,
                    budget_remaining=served.record.budget_remaining, response=answer.response(), cache_hit=True)
            call.decide("allow", reason, model_requested=model.id, model_used=model.id)
            response, attempt = await runtime.attempt(model, request, call)
        except BaseException as exc:
            runtime.finish(call, action="stop" if isinstance(exc, BudgetExceeded) else "error",
                           model_selected=None, response=None, error=exc)
            raise
        record = runtime.finish(call, action="allow", model_selected=attempt.model, response=response)
        if self.verbose:
            _print_single(call.request_id, model, reason, attempt, record.latency_ms)
        return CompletionResult(
            content=response.content, model=attempt.model, cost_decimal=attempt.cost, usage=response.usage,
            latency_ms=record.latency_ms, request_id=call.request_id, routing_reason=reason,
            tool_calls=response.tool_calls, finish_reason=response.finish_reason,
            tiers=[a.to_dict() for a in call.attempts], budget_remaining=record.budget_remaining,
            response=response,
        )

    async def _cascade(self, tiers: tuple[ModelConfig, ...], request: Request, reason: str,
                       user_id: str | None, agent_id: str | None, quality_config: Any) -> CompletionResult:
        from cascadeflow.cascade.agent import CascadeAgent
        from cascadeflow.routing.route import Route

        route = Route(tiers, reason, kind="caller")
        agent = CascadeAgent(router=_FixedRouter(route), quality_config=quality_config or self.quality_config,
                             runtime=self.runtime, verbose=self.verbose, cache_config=self.cache)
        result = await agent.run(list(request.messages), max_tokens=request.max_tokens,
                                 tools=list(request.tools) or None, user_id=user_id, metadata=dict(request.metadata))
        return CompletionResult(
            content=result.content, model=result.model_used, cost_decimal=result.total_cost_decimal, usage=result.usage,
            latency_ms=result.latency_ms, request_id=result.request_id, routing_reason=reason,
            tool_calls=tuple(result.tool_calls), finish_reason=getattr(result, "finish_reason", "stop"),
            tiers=[t.to_dict() for t in result.tiers],
            draft_accepted=result.draft_accepted, budget_remaining=getattr(result, "budget_remaining", None),
            cache_hit=result.cache_hit,
        )

