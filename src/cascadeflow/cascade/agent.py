"""`CascadeAgent`: routes each request to a model or cascade and runs it through the runtime pipeline."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import math
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from cascadeflow.cache import open_cache
from cascadeflow.cascade import events as ev
from cascadeflow.cascade.analytics import AnalyticsSnapshot, CascadeAnalytics
from cascadeflow.cascade.events import CascadeEvent, EventBus, VerbosePrinter
from cascadeflow.cascade.execution import CascadeExecution, Judgement, Plan
from cascadeflow.cascade.quality import QualityConfig, assess
from cascadeflow.cascade.result import CascadeResult, TierAttempt
from cascadeflow.cascade.tiers import check_tier_order
from cascadeflow.errors import CascadeExhausted, ConfigurationError
from cascadeflow.messages import Message, Request, Response, build_request
from cascadeflow.metrics.observers import check_observer, notify
from cascadeflow.models import ModelConfig, as_model_config
from cascadeflow.routing.complexity import ComplexityEstimate, ComplexityRouter, estimate_complexity
from cascadeflow.routing.domains import DomainConfig
from cascadeflow.routing.route import Route
from cascadeflow.runtime.budgets import budget_call_options, call_options, refusals_reported
from cascadeflow.runtime.cache_step import Served
from cascadeflow.runtime.pipeline import CALL_OPTIONS, Runtime
from cascadeflow.sync import run_sync
from cascadeflow.trace.events import anomaly_record, is_detector, new_anomalies, watch_anomalies


def _default_runtime() -> Runtime:
    """The runtime used when none is given: the one `cascadeflow.init()` configured (or its defaults)."""
    from cascadeflow.harness.state import default_runtime

    return default_runtime()


Query = str | Message | Sequence[Message | Mapping[str, Any]]
_DONE = object()


class CascadeAgent:
    """Answer with the cheapest tier whose answer passes validation; escalate otherwise.

    `models` are tiers from cheap to expensive (checked against the price book unless `allow_unordered`).
    A `router` (anything with `route(request) -> Route | None`, e.g. ModelRouter, SeverityRouter) or a
    `domain_config` may pick the tiers per request; `complexity_router` may send hard requests straight to
    the last tier; `speculative=True` starts tier 1 alongside tier 0 when the request looks hard.
    """

    def __init__(self, models: Sequence[ModelConfig | str] | None = None, *,
                 quality_config: QualityConfig | None = None, verbose: bool = False, router: Any = None, domain_config: DomainConfig | None = None,
                 runtime: Runtime | None = None, allow_unordered: bool = False, speculative: bool = False,
                 speculate_above: float = 0.5, complexity_router: ComplexityRouter | None = None,
                 name: str | None = None, budget_config: Any = None, cache_config: Any = None,
                 on_query_complete: Callable[[CascadeResult], Any] | None = None, metrics_collector: Any = None,
                 anomaly_detector: Any = None, alert_config: Any = None):
        if router is not None and domain_config is not None:
            raise ConfigurationError("pass either router= or domain_config=, not both")
        if router is not None and not callable(getattr(router, "route", None)):
            raise ConfigurationError("router must have a route(request) method (e.g. ModelRouter, SeverityRouter)")
        if quality_config is not None and not isinstance(quality_config, QualityConfig):
            raise ConfigurationError(f"quality_config must be a QualityConfig, got {type(quality_config).__name__}")
        if on_query_complete is not None and not callable(on_query_complete):
            raise ConfigurationError("on_query_complete must be callable: it is called with each CascadeResult")
        self._runtime = runtime
        self.models: tuple[ModelConfig, ...] = tuple(as_model_config(m) for m in models or ())
        self.allow_unordered = allow_unordered
        self._checked: set[tuple[str, ...]] = set()
        if self.models:
            self._check_order(self.models, "models")
        if domain_config is not None:
            for domain, tiers in domain_config.domains.items():
                self._check_order(tiers, f"domain {domain}")
        if not self.models and router is None and (domain_config is None or domain_config.default is None):
            raise ConfigurationError("CascadeAgent needs models=[ModelConfig(...), ...] (cheapest first), "
                                     "a router=, or a domain_config= with a DEFAULT cascade")
        self.quality_config = quality_config or QualityConfig()
        self.router = router
        self.domain_config = domain_config
        self.complexity_router = complexity_router
        self.speculative = speculative
        self.speculate_above = speculate_above
        self.name = name
        self.budget_config = budget_config  # BudgetConfig: daily/user/agent budgets, degrade near the limit
        self.cache = open_cache(cache_config)  # None: the cache cascadeflow.init() configured, if any
        self.on_query_complete = on_query_complete
        self.verbose = verbose
        # each sees every finished call's audit record (MetricsCollector, AnomalyDetector, AlertConfig)
        self.metrics_collector = check_observer(metrics_collector, "metrics_collector")
        self.anomaly_detector = check_observer(anomaly_detector, "anomaly_detector")
        self.alert_config = check_observer(alert_config, "alert_config")
        self._observers = tuple(o for o in (self.metrics_collector, self.anomaly_detector, self.alert_config)
                                if o is not None)
        if anomaly_detector is not None and is_detector(anomaly_detector):
            watch_anomalies(anomaly_detector)  # what it found before is not this agent's to record
        self.analytics = CascadeAnalytics()
        self._bus = EventBus()
        if verbose:
            self._bus.on_event(VerbosePrinter())
        n = len(self.models)
        self._default_route = Route(self.models, f"cascade of {n} tiers" if n > 1 else "single model") \
            if self.models else None

    @property
    def runtime(self) -> Runtime:
        """The runtime given at construction, else the harness's current one (resolved per call, so an
        agent built before `cascadeflow.init()` follows what init() configured)."""
        return self._runtime if self._runtime is not None else _default_runtime()

    @runtime.setter
    def runtime(self, value: Runtime | None) -> None:
        self._runtime = value

    def _check_order(self, tiers: Sequence[ModelConfig], where: str) -> None:
        key = tuple(cfg.id for cfg in tiers)
        if key not in self._checked:
            check_tier_order(tiers, self.runtime.price_book, allow_unordered=self.allow_unordered, where=where)
            self._checked.add(key)

    # events -------------------------------------------------------------------------------------------
    def on_event(self, fn: Callable[[CascadeEvent], None]) -> Callable[[], None]:
        """Call `fn(event)` for every decision event; returns an unsubscribe function."""
        return self._bus.on_event(fn)

    def events(self) -> AsyncIterator[CascadeEvent]:
        """An async iterator over every decision event emitted from now on (break to stop)."""
        return self._bus.events()

    # planning -----------------------------------------------------------------------------------------
    def route(self, request: Request) -> Route:
        """The route a request would take (pure: no call is made)."""
        found: Route | None = None
        if self.router is not None:
            found = self.router.route(request)
        elif self.domain_config is not None:
            found = self.domain_config.route(request)
        if found is None:
            if self._default_route is None:
                raise ConfigurationError("the router had no route for this request and the agent has no "
                                         "models= to fall back on")
            return self._default_route
        if not isinstance(found, Route) or not found.models:
            raise ConfigurationError(f"router {type(self.router or self.domain_config).__name__} returned "
                                     f"{found!r}; a router must return a Route with at least one model, or None")
        if found.is_cascade:
            self._check_order(found.models, f"route {found.label or found.kind}")
        return found

    def _plan(self, request: Request, forced: ModelConfig | None = None) -> Plan:
        route = Route((forced,), "model chosen by the caller", kind="caller") if forced is not None \
            else self.route(request)
        tiers, top = route.models, route.models[-1]
        complexity: ComplexityEstimate | None = None
        if self.complexity_router is not None and route.is_cascade:
            decided, complexity = self.complexity_router.decide(request, tiers)
            if decided.label == "direct":
                route = Route(decided.models, f"{route.reason}; {decided.reason}", kind=route.kind,
                              label=route.label, details={**route.details, **decided.details})
                tiers = route.models
        elif (self.speculative or self.quality_config.thresholds_by_complexity) and route.is_cascade:
            complexity = estimate_complexity(request)  # picks the per-complexity bar / speculation
        raise_bar, cheapest_only, why = self._pressure()
        if cheapest_only and len(tiers) > 1:
            tiers = tiers[:1]
            why = f"budget pressure: cheapest tier only{(' (' + why + ')') if why else ''}"
        # no speculation under budget pressure: a second concurrent reservation is what a tight budget lacks
        speculate = (self.speculative and len(tiers) > 1 and complexity is not None and not raise_bar
                     and not cheapest_only and complexity.score >= self.speculate_above)
        return Plan(request=request, route=route, tiers=tiers, top=top, complexity=complexity,
                    raise_bar=raise_bar, pressure_reason=why, speculate=speculate)

    def _pressure(self) -> tuple[float, bool, str]:
        """Budget degrade seam: a raised acceptance bar and/or cheapest-tier-only, from the call options or
        from `runtime.budget_pressure` (a value or a no-argument callable with raise_bar/cheapest_only/reason)."""
        raise_bar, cheapest, why = 0.0, False, ""
        options = CALL_OPTIONS.get()
        if options is not None:
            raise_bar, cheapest, why = options.raise_bar, options.cheapest_only, options.reason
        hook = getattr(self.runtime, "budget_pressure", None)
        pressure = hook() if callable(hook) else hook
        if pressure is not None:
            raise_bar = max(raise_bar, float(getattr(pressure, "raise_bar", 0.0) or 0.0))
            cheapest = cheapest or bool(getattr(pressure, "cheapest_only", False))
            why = why or str(getattr(pressure, "reason", "") or "")
        return raise_bar, cheapest, why

    def _judge(self, request: Request, response: Response, complexity: ComplexityEstimate | None,
               raise_bar: float) -> Judgement:
        verdict = assess(request, response, self.quality_config,
                         complexity=complexity.level if complexity is not None else None, raise_bar=raise_bar)
        return Judgement(accepted=verdict.accepted, score=verdict.score, reason=verdict.reason,
                         signals=verdict.used)

    # running ------------------------------------------------------------------------------------------
    async def run(self, query_or_messages: Query, max_tokens: int | None = None, tools: Sequence[Any] | None = None,
                  user_id: str | None = None, metadata: Mapping[str, Any] | None = None, *,
                  model: str | ModelConfig | None = None, **options: Any) -> CascadeResult:
        """Answer one query (a string or a list of messages). `options` go to the request (temperature,
        tool_choice, response_format, stop, timeout, ...; an unknown name is an error listing the accepted
        ones). max_tokens=None lets each model use its limit. `model` answers with that model only (one of
        the agent's models by name, or any 'provider/model'), bypassing routing and the cascade."""
        request = build_request(query_or_messages, max_tokens=max_tokens, tools=tools, metadata=metadata, **options)
        return await self._execute(request, user_id=user_id, forced=self._forced(model))

    def run_sync(self, query_or_messages: Query, max_tokens: int | None = None, tools: Sequence[Any] | None = None,
                 user_id: str | None = None, metadata: Mapping[str, Any] | None = None, *,
                 model: str | ModelConfig | None = None, **options: Any) -> CascadeResult:
        """The synchronous twin of `run` (refused inside a running event loop)."""
        return run_sync(self.run(query_or_messages, max_tokens, tools, user_id, metadata, model=model, **options),
                        what="CascadeAgent.run_sync")

    def _forced(self, model: str | ModelConfig | None) -> ModelConfig | None:
        """The model a caller's `model=` names: one of the agent's own by name or id, else 'provider/model'."""
        if model is None or isinstance(model, ModelConfig):
            return model
        known = list(self.models)
        if self.domain_config is not None:
            known += [m for tiers in self.domain_config.domains.values() for m in tiers]
        found = next((m for m in known if model in (m.name, m.id)), None)
        return found if found is not None else as_model_config(model)

    async def run_batch(self, queries: Sequence[Query], *, concurrency: int = 8, return_exceptions: bool = False,
                        user_id: str | None = None, metadata: Mapping[str, Any] | None = None,
                        **options: Any) -> list[CascadeResult | BaseException]:
        """Run many queries with at most `concurrency` in flight; results keep the input order. Every query
        is validated before the first call is made. An item may be a dict {"query": ..., "metadata": {...},
        "user_id": ...} to give it its own metadata (merged over the shared `metadata`) and user."""
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigurationError(f"concurrency must be a positive integer, got {concurrency!r}")
        items = [self._batch_item(q, i, metadata, user_id, options) for i, q in enumerate(queries)]
        gate = asyncio.Semaphore(concurrency)

        async def one(request: Request, user: str | None) -> CascadeResult:
            async with gate:
                return await self._execute(request, user_id=user)

        return list(await asyncio.gather(*(one(r, u) for r, u in items), return_exceptions=return_exceptions))

    def run_queries(self, queries: Sequence[Query], *, concurrency: int = 8, user_id: str | None = None,
                    metadata: Mapping[str, Any] | None = None, **options: Any) -> list[CascadeResult]:
        """Answer many queries and return their results in order: the synchronous form of `run_batch`
        (refused inside a running event loop). The first query that fails raises."""
        results = run_sync(self.run_batch(queries, concurrency=concurrency, user_id=user_id, metadata=metadata,
                                          **options), what="CascadeAgent.run_queries")
        return [r for r in results if isinstance(r, CascadeResult)]

    @staticmethod
    def _batch_item(item: Any, index: int, metadata: Mapping[str, Any] | None, user_id: str | None,
                    options: Mapping[str, Any]) -> tuple[Request, str | None]:
        if isinstance(item, Mapping) and "role" not in item:
            if "query" not in item:
                raise ConfigurationError(f"batch item {index}: a dict needs 'query' (and optionally 'metadata', "
                                         f"'user_id')")
            merged = {**(metadata or {}), **(item.get("metadata") or {})}
            return build_request(item["query"], metadata=merged, **options), item.get("user_id", user_id)
        return build_request(item, metadata=metadata, **options), user_id

    async def stream(self, query_or_messages: Query, max_tokens: int | None = None, tools: Sequence[Any] | None = None,
                     user_id: str | None = None, metadata: Mapping[str, Any] | None = None, *,
                     show_draft: bool = False, model: str | ModelConfig | None = None,
                     **options: Any) -> AsyncIterator[CascadeEvent]:
        """Events of one run: decisions, `text` deltas of the answer, and `completed` (data["result"]).

        A draft's text is held back until it is accepted; with show_draft=True it streams as `draft_text`
        after a `draft_pending` ("draft may be replaced") event, and a `replaced` event withdraws it on
        escalation. Errors (CascadeExhausted, BudgetExceeded, ...) are raised from the iterator."""
        request = build_request(query_or_messages, max_tokens=max_tokens, tools=tools, metadata=metadata, **options)
        queue: asyncio.Queue[Any] = asyncio.Queue()
        task = asyncio.ensure_future(self._execute(request, user_id=user_id, stream=queue.put_nowait,
                                                   show_draft=show_draft, forced=self._forced(model)))
        task.add_done_callback(lambda _: queue.put_nowait(_DONE))
        try:
            while (item := await queue.get()) is not _DONE:
                yield item
            task.result()  # re-raise the run's error, if any
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _execute(self, request: Request, *, user_id: str | None, stream: Callable[[CascadeEvent], None]
                       | None = None, show_draft: bool = False, forced: ModelConfig | None = None) -> CascadeResult:
        if self.budget_config is None:
            result = await self._execute_planned(request, user_id=user_id, stream=stream, show_draft=show_draft,
                                                 forced=forced)
        else:
            options = budget_call_options(self.budget_config, self.runtime.ledger, user_id=user_id,
                                          agent_id=self.name)
            with call_options(options), refusals_reported(self.budget_config, options):
                result = await self._execute_planned(request, user_id=user_id, stream=stream,
                                                     show_draft=show_draft, forced=forced)
        if self.on_query_complete is not None:
            # after the answer is recorded and counted; what the hook raises (e.g. a budget of its own) is
            # the caller's to see
            done = self.on_query_complete(result)
            if inspect.isawaitable(done):
                await done
        return result

    async def _execute_planned(self, request: Request, *, user_id: str | None,
                               stream: Callable[[CascadeEvent], None] | None, show_draft: bool,
                               forced: ModelConfig | None = None) -> CascadeResult:
        plan = self._plan(request, forced)
        call = self.runtime.new_call(user_id=user_id, agent_id=self.name, metadata=request.metadata,
                                     routing_reason=plan.route.reason, model_requested=plan.tiers[0].id)
        execution = CascadeExecution(self.runtime, plan=plan, call=call, judge=self._judge,
                                     emit=self._bus.emit if self._bus.active else None, stream=stream,
                                     show_draft=show_draft)
        try:
            # the cache step vets the first tier as it will be sent (policy, per-call cap) before looking up
            served = self.runtime.from_cache(call, execution.first_request, plan.tiers, quality=self.quality_config,
                                             cache=self.cache)
            if served is None:
                if execution.listening:
                    execution.emit(ev.MODEL_SELECTED, reason=plan.route.reason, cfg=plan.tiers[0], tier=0,
                                   target=" → ".join(m.name for m in plan.tiers), route_kind=plan.route.kind,
                                   route_label=plan.route.label)
                result = await execution.run()
        except BaseException as exc:
            # CascadeExhausted, and BudgetExceeded/PolicyViolation from the runtime (not escalated): the
            # attempts made so far still cost money and still get an audit record.
            record = self.runtime.finish(call, action="stop", model_selected=None, response=None, error=exc)
            self.analytics.record_failure(call.spent, timestamp=record.timestamp)
            if self._observers:
                self._notify(record)
            if not isinstance(exc, CascadeExhausted):
                execution.emit(ev.ERROR, reason=f"{type(exc).__name__}: {exc}")
            raise
        if served is not None:
            return self._served(plan, call, served, stream)
        accepted = any(t.decision == "accepted" for t in result.tiers)
        action = "accept" if accepted else ("allow" if len(plan.tiers) == 1 else "escalate")
        record = self.runtime.finish(call, action=action, model_selected=result.model_used, response=result.response)
        if self._observers:
            self._notify(record, result)
        self.analytics.record(result, cascaded=len(plan.tiers) > 1, timestamp=record.timestamp)
        if execution.listening:
            # a policy may have switched the model a tier asked for
            answered_by = next((m for m in plan.tiers if m.id == result.model_used), None) \
                or as_model_config(result.model_used)
            execution.emit(ev.COMPLETED, reason=action, cfg=answered_by,
                           tokens=result.usage.total_tokens, cost=result.total_cost, latency_ms=result.latency_ms,
                           total_cost=result.total_cost, savings_pct=result.savings_pct, result=result)
        return result

    def _served(self, plan: Plan, call: Any, served: Served, stream: Callable[[CascadeEvent], None] | None
                ) -> CascadeResult:
        """The result of a cache hit; a streaming caller receives its text and a `completed` event."""
        answer, record = served.answer, served.record
        reason = f"{served.kind} cache hit"
        result = CascadeResult(
            content=answer.content, model_used=answer.model, draft_accepted=False,
            tiers=[TierAttempt(tier=answer.tier, model=answer.model, decision="final", reason=reason)],
            total_cost_decimal=Decimal(0), baseline_cost_decimal=answer.cost, baseline_estimated=True,
            latency_ms=record.latency_ms, usage=answer.usage, request_id=call.request_id,
            tool_calls=answer.tool_calls, routing_reason=plan.route.reason, route_kind=plan.route.kind,
            route_label=plan.route.label, response=answer.response(), user_id=call.user_id,
            metadata=dict(call.metadata), cache_hit=True,
        )
        self.analytics.record_cache_hit(result, saved=answer.cost, timestamp=record.timestamp)
        if self._observers:
            self._notify(record, result)
        events = []
        if stream is not None:
            events.append(ev.CascadeEvent(kind=ev.TEXT, request_id=call.request_id, reason=reason,
                                          model=answer.model, tier=answer.tier,
                                          data={"text": answer.content}))
        if stream is not None or self._bus.active:
            events.append(ev.CascadeEvent(kind=ev.COMPLETED, request_id=call.request_id, reason=reason,
                                          model=answer.model, tier=answer.tier,
                                          data={"tokens": answer.usage.total_tokens, "usage": answer.usage,
                                                "cost": Decimal(0), "saved": answer.cost, "cache_hit": True,
                                                "latency_ms": result.latency_ms, "result": result}))
        for event in events:
            if stream is not None:
                stream(event)
            if event.kind != ev.TEXT and self._bus.active:
                self._bus.emit(event)
        return result

    def _notify(self, record: Any, result: CascadeResult | None = None) -> None:
        """Give the record to the observers; anomalies the detector found on it are written to the audit log
        as event records (each once, whichever thread's record revealed it)."""
        notify(self._observers, record, result)
        detector = self.anomaly_detector
        if detector is None or not is_detector(detector):
            return
        runtime = self.runtime
        for anomaly in new_anomalies(detector):
            runtime.delivery.deliver(anomaly_record(anomaly, mode=record.mode, price_version=record.price_version,
                                                    agent_id=self.name, key_field=getattr(detector, "key", None)))

    # reporting ----------------------------------------------------------------------------------------
    def get_analytics(self) -> AnalyticsSnapshot:
        """Totals over every run of this agent (see AnalyticsSnapshot); `budget` is its BudgetConfig's
        monthly limit, else its daily one (inf without a budget)."""
        config = self.budget_config
        limit = None if config is None else (config.monthly_limit if config.monthly_limit is not None
                                             else config.daily_limit)
        return self.analytics.snapshot(budget=math.inf if limit is None else float(limit))

    def reset_analytics(self) -> None:
        self.analytics.reset()

    async def evaluate(self, test_queries: Any, *, scorer: Callable[..., Any] | None = None,
                       concurrency: int = 4) -> Any:
        """Run labelled (or unlabelled) queries and report acceptance, average cost and average quality.
        Given a ReplayDataset, replay this agent's cascade over the recorded answers and score from the
        recorded labels (see docs/replay.md; a file path: `cascadeflow.replay.evaluate(agent, path)`)."""
        from cascadeflow.cascade.evaluation import evaluate

        return await evaluate(self, test_queries, scorer=scorer, concurrency=concurrency)

    async def tune_threshold(self, dataset: Any, *, target_quality: float = 0.95, calibrate_on: Any = None,
                             **options: Any) -> Any:
        """Choose this agent's acceptance threshold on calibration data and measure it on held-out recorded
        data (a ReplayDataset; `cascadeflow.replay.tune_threshold` also takes file paths); the agent itself
        is not changed."""
        tune = getattr(dataset, "tune_agent", None)
        if tune is None:
            raise ConfigurationError(f"tune_threshold() takes a ReplayDataset, got {type(dataset).__name__}; "
                                     "for a file path call cascadeflow.replay.tune_threshold(agent, path)")
        return await tune(self, target_quality=target_quality, calibrate_on=calibrate_on, **options)
