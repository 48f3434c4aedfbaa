"""One cascade run: tiers tried cheap to expensive through the runtime, each answer judged, escalation on
rejection or provider error, optional speculation, streaming with held-back drafts, and the result."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cascadeflow.cascade import events as ev
from cascadeflow.cascade.result import CascadeResult, TierAttempt
from cascadeflow.cascade.tiers import baseline, tier_attempt
from cascadeflow.errors import (
    BudgetExceeded,
    CascadeExhausted,
    MalformedResponseError,
    PolicyViolation,
    ProviderError,
)
from cascadeflow.messages import Request, Response, StreamDone, TextDelta, Usage
from cascadeflow.models import ModelConfig
from cascadeflow.routing.complexity import ComplexityEstimate
from cascadeflow.routing.route import Route
from cascadeflow.runtime.pipeline import AttemptRecord, CallContext, Runtime

log = logging.getLogger(__name__)

Emit = Callable[[ev.CascadeEvent], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Judgement:
    """The cascade's view of a quality verdict."""

    accepted: bool
    score: float | None
    reason: str
    signals: tuple[str, ...]


Judge = Callable[[Request, Response, "ComplexityEstimate | None", float], Judgement]


@dataclass(slots=True)
class Plan:
    """Everything decided before the first call: the request, the route and its tiers, pressure, speculation."""

    request: Request
    route: Route
    tiers: tuple[ModelConfig, ...]
    top: ModelConfig  # the route's strongest tier: the baseline
    complexity: ComplexityEstimate | None = None
    raise_bar: float = 0.0
    pressure_reason: str = ""
    speculate: bool = False


class CascadeExecution:
    """Runs one Plan. `emit` receives decision events; `stream` (when streaming) also receives text events."""

    def __init__(self, runtime: Runtime, *, plan: Plan, call: CallContext, judge: Judge, emit: Emit | None,
                 stream: Emit | None = None, show_draft: bool = False):
        self.runtime = runtime
        self.plan = plan
        self.call = call
        self.judge = judge
        self._emit_fn = emit
        self._stream = stream
        self.show_draft = show_draft
        self.attempts: list[TierAttempt] = []
        self.started = time.perf_counter()
        self._speculative: asyncio.Task[tuple[Response, AttemptRecord]] | None = None
        self._usage = Usage()
        self._speculation_used = False  # tier 1's answer came from the speculative call
        self._shown: set[int] = set()  # tiers whose text the stream consumer has already seen

    @property
    def listening(self) -> bool:
        """Whether anyone receives events: when nobody does, callers skip building their data."""
        return self._emit_fn is not None or self._stream is not None

    def emit(self, kind: str, *, reason: str = "", cfg: ModelConfig | None = None, tier: int | None = None,
             **data: Any) -> None:
        """A decision event: to the agent's listeners and, when streaming, to the stream."""
        if self._emit_fn is None and self._stream is None:
            return  # nobody listens: skip building the event on the hot path
        if cfg is not None:
            data.setdefault("model_name", cfg.name)
        event = ev.CascadeEvent(kind=kind, request_id=self.call.request_id, reason=reason,
                                model=cfg.id if cfg else None, tier=tier, data=data)
        if self._emit_fn is not None:
            self._emit_fn(event)
        if self._stream is not None:
            self._stream(event)

    def _text(self, kind: str, cfg: ModelConfig, tier: int, text: str = "", reason: str = "") -> None:
        """A stream-only event (answer text); listeners of decisions do not see these."""
        if self._stream is not None:
            self._stream(ev.CascadeEvent(kind=kind, request_id=self.call.request_id, reason=reason,
                                         model=cfg.id, tier=tier,
                                         data={"text": text, "model_name": cfg.name}))

    async def run(self) -> CascadeResult:
        tiers = self.plan.tiers
        last = len(tiers) - 1
        try:
            for i, cfg in enumerate(tiers):
                if i == 0 and self.plan.speculate and last > 0:
                    # started before the draft's verdict; never streamed, so nothing shown needs withdrawing
                    self._speculative = asyncio.ensure_future(
                        self._attempt(tiers[1], 1, "verifier", live=False, streamed=False))
                try:
                    response, record = await self._tier_response(i, cfg, last)
                except ProviderError as exc:
                    self._record_error(i, cfg, exc, last)
                    continue
                self._usage = self._usage + response.usage
                answered = self._decide(i, cfg, response, record, last)
                if answered is not None:
                    await self._cancel_speculative()  # first, so its cost and answer are in the result
                    return self._result(response, cfg, draft_accepted=answered)
        finally:
            await self._cancel_speculative()
        raise AssertionError("unreachable: the last tier either answers or raises")

    async def _tier_response(self, i: int, cfg: ModelConfig, last: int) -> tuple[Response, AttemptRecord]:
        role = "single" if last == 0 else ("draft" if i < last else "verifier")
        if i == 1 and self._speculative is not None:
            task, self._speculative = self._speculative, None
            try:
                answer = await task
                self._speculation_used = True
                return answer
            except BudgetExceeded:
                # refused while the draft's reservation was still held; that one is settled now, so the
                # sequential attempt below gets the same chance it would have had without speculation
                log.info("speculative tier 1 refused by a budget; retrying after the draft")
        return await self._attempt(cfg, i, role, live=i == last)

    @property
    def first_request(self) -> Request:
        """The request the first tier sends (what the cache step vets and looks up)."""
        return self._request_for(self.plan.tiers[0], "single" if len(self.plan.tiers) == 1 else "draft")

    def _request_for(self, cfg: ModelConfig, role: str) -> Request:
        """Drafts ask for token logprobs where the model returns them: the logprob signal needs them."""
        request = self.plan.request
        wants = cfg.supports_logprobs if cfg.supports_logprobs is not None else cfg.facts.logprobs
        if role == "draft" and wants and not request.logprobs:
            return request.with_(logprobs=True)
        return request

    async def _attempt(self, cfg: ModelConfig, tier: int, role: str, *, live: bool,
                       streamed: bool = True) -> tuple[Response, AttemptRecord]:
        request = self._request_for(cfg, role)
        if self._stream is None or not streamed:
            return await self.runtime.attempt(cfg, request, self.call, tier=tier, role=role)
        async def invoke(request: Request) -> Response:
            # the policy may have switched the model: stream from the one the pipeline is sending to
            provider = self.runtime.resolve_provider(self.call.active_model or cfg)
            shown = False
            async for item in provider.stream(request):
                if isinstance(item, StreamDone):
                    return item.response
                if not isinstance(item, TextDelta) or not item.text:
                    continue
                if live:
                    self._text(ev.TEXT, cfg, tier, item.text)
                    self._shown.add(tier)
                elif self.show_draft:
                    if not shown:
                        self._text(ev.DRAFT_PENDING, cfg, tier, reason="draft may be replaced")
                        shown = True
                        self._shown.add(tier)
                    self._text(ev.DRAFT_TEXT, cfg, tier, item.text)
            raise MalformedResponseError("stream ended without a final message", provider=cfg.provider,
                                         model=cfg.name)

        return await self.runtime.attempt(cfg, request, self.call, tier=tier, role=role, invoke=invoke)

    def _release(self, text: str, cfg: ModelConfig, tier: int) -> None:
        """Emit a held-back answer as final text (unless its text was already streamed)."""
        if text and tier not in self._shown:
            self._text(ev.TEXT, cfg, tier, text)

    def _record_error(self, i: int, cfg: ModelConfig, exc: ProviderError, last: int) -> None:
        error = f"{type(exc).__name__}: {exc}"
        record = next((a for a in reversed(self.call.attempts) if a.tier == i), None)
        self.attempts.append(tier_attempt(record, tier=i, model=cfg.id, decision="error", reason="error",
                                          error=error, speculative=i == 1 and self._speculation_used))
        self._decision("escalate" if i < last else "stop", "error", cfg, i, record, error=error)
        self.emit(ev.ERROR, reason=error, cfg=cfg, tier=i)
        if i in self._shown:
            self._text(ev.REPLACED, cfg, i, reason=f"tier failed: {error}")
        if i == last:
            log.warning("cascade %s exhausted: %s", self.call.request_id, error)
            raise CascadeExhausted(
                f"every tier failed or was rejected ({len(self.attempts)} attempts); last error: {error}",
                list(self.attempts)) from exc
        self.emit(ev.ESCALATED, reason="error", cfg=self.plan.tiers[i + 1], tier=i + 1)

    def _decide(self, i: int, cfg: ModelConfig, response: Response, record: AttemptRecord,
                last: int) -> bool | None:
        """Record the verdict on tier i; returns draft_accepted when this answer is returned, else None."""
        verdict = self.judge(self.plan.request, response, self.plan.complexity, self.plan.raise_bar)
        stats = {"tokens": record.input_tokens + record.output_tokens, "cost": record.cost,
                 "latency_ms": record.latency_ms, "score": verdict.score} if self.listening else {}
        speculative = i == 1 and self._speculation_used
        if i == last:
            reason = "final tier" if last > 0 else (self.plan.pressure_reason or "single model")
            if not verdict.accepted:
                reason += f"; validator would reject: {verdict.reason}"
            self.attempts.append(tier_attempt(record, tier=i, model=cfg.id, decision="final", reason=reason,
                                              score=verdict.score, signals=verdict.signals, speculative=speculative))
            self._release(response.content, cfg, i)
            self._decision("allow", reason, cfg, i, record, score=verdict.score)
            return False
        if verdict.accepted:
            self.attempts.append(tier_attempt(record, tier=i, model=cfg.id, decision="accepted",
                                              reason=verdict.reason, score=verdict.score, signals=verdict.signals))
            self._decision("accept", verdict.reason, cfg, i, record, score=verdict.score)
            self.emit(ev.DRAFT_ACCEPTED, reason=verdict.reason, cfg=cfg, tier=i, **stats)
            self._release(response.content, cfg, i)
            return i == 0
        self.attempts.append(tier_attempt(record, tier=i, model=cfg.id, decision="rejected", reason=verdict.reason,
                                          score=verdict.score, signals=verdict.signals, speculative=speculative))
        self._decision("escalate", verdict.reason, cfg, i, record, score=verdict.score)
        self.emit(ev.DRAFT_REJECTED, reason=verdict.reason, cfg=cfg, tier=i, **stats)
        if i in self._shown:
            self._text(ev.REPLACED, cfg, i, reason=f"draft rejected: {verdict.reason}")
        self.emit(ev.ESCALATED, reason=verdict.reason, cfg=self.plan.tiers[i + 1], tier=i + 1)
        return None

    def _decision(self, action: str, reason: str, cfg: ModelConfig, tier: int, record: AttemptRecord | None,
                  **details: Any) -> None:
        decision = self.call.decide(action, reason, model_requested=cfg.id, model_used=cfg.id, **details)
        decision.tier = tier
        if record is not None:
            decision.cost = float(record.cost)
            decision.input_tokens = record.input_tokens
            decision.output_tokens = record.output_tokens
            decision.latency_ms = record.latency_ms

    def _result(self, response: Response, cfg: ModelConfig, *, draft_accepted: bool) -> CascadeResult:
        total = sum((a.cost for a in self.call.attempts), Decimal(0))  # every attempt, speculative included
        base, estimated = baseline(self.plan.top, self.attempts, response, self.runtime.price_book)
        route = self.plan.route
        answered = next(t for t in reversed(self.attempts) if t.decision in ("accepted", "final"))
        return CascadeResult(
            content=response.content, model_used=answered.model, draft_accepted=draft_accepted, tiers=self.attempts,
            total_cost_decimal=total, baseline_cost_decimal=base, baseline_estimated=estimated,
            latency_ms=(time.perf_counter() - self.started) * 1000, usage=self._usage,
            request_id=self.call.request_id, tool_calls=response.tool_calls, routing_reason=route.reason,
            route_kind=route.kind, route_label=route.label, response=response, user_id=self.call.user_id,
            metadata=dict(self.call.metadata),
        )

    async def _cancel_speculative(self) -> None:
        task, self._speculative = self._speculative, None
        if task is None:
            return
        if not task.done():
            task.cancel()
        try:
            await task
        except (asyncio.CancelledError, ProviderError, BudgetExceeded, PolicyViolation) as exc:
            # the answer is decided already; a refused or failed speculative call changes nothing
            log.debug("speculative tier 1 ended with %s", type(exc).__name__)
        cfg = self.plan.tiers[1]
        record = next((a for a in reversed(self.call.attempts) if a.tier == 1), None)
        why = "draft accepted; speculative call cancelled" if record is None or record.status != "ok" \
            else "draft accepted; speculative answer discarded"
        self.attempts.append(tier_attempt(record, tier=1, model=cfg.id, decision="cancelled", reason=why,
                                          speculative=True))
