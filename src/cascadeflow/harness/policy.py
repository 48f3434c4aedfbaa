"""The run-scope policy the runtime calls around every attempt: compliance (models, regions, personal data),
the tool-call cap, KPI model choice and the run budget; in observe mode it only records what it would do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cascadeflow.errors import BudgetExceeded, PolicyViolation, UnknownModelPriceError
from cascadeflow.harness import state
from cascadeflow.harness.compliance import redact_request
from cascadeflow.harness.kpi import choose_model
from cascadeflow.messages import Request, Response
from cascadeflow.models import ModelConfig
from cascadeflow.pricing import from_micro_usd, to_micro_usd
from cascadeflow.runtime.pipeline import (
    DEFAULT_MAX_OUTPUT_TOKENS,
    AttemptRecord,
    CallContext,
    estimate_worst_case,
)
from cascadeflow.stamps import now_iso
from cascadeflow.tokens import estimate_input_tokens
from cascadeflow.trace.records import DecisionRecord

if TYPE_CHECKING:
    from cascadeflow.harness.scope import RunScope


VERDICT_ACTIONS = {"accept": 1.0, "escalate": 0.0}  # cascade decisions that carry a validator verdict
COMPLETED = {"stop", "tool_calls"}  # finish reasons that count as a completed answer


class HarnessPolicy:
    """Policy of one RunScope; enforces in enforce mode, records would-be actions in observe mode."""

    def __init__(self, scope: RunScope):
        self.scope = scope
        self._counted: set[int] = set()  # ids of AttemptRecords already added to the scope (until finish)

    @property
    def enforce(self) -> bool:
        return self.scope.mode == "enforce"

    def decide(self, call: CallContext, action: str, reason: str, *, model: ModelConfig,
               model_used: ModelConfig | None = None, applied: bool | None = None, **details: Any) -> None:
        record = call.decide(action, reason, model_requested=model.id,
                             model_used=(model_used or model).id, applied=self.enforce if applied is None else applied,
                             **details)
        record.budget_remaining = self.scope.remaining_usd()
        self.scope.note(record)

    def before_attempt(self, model: ModelConfig, request: Request, call: CallContext) -> tuple[ModelConfig, Request]:
        if self.scope.mode == "off":
            return model, request
        chain = self.scope.chain()
        latency = compliance = kpi = False
        for s in chain:  # one pass: most runs configure none of these, and this runs on every call
            latency = latency or s.max_latency_ms is not None
            compliance = compliance or s.compliance is not None
            kpi = kpi or bool(s.kpi_weights)
        if latency:
            self._check_latency(chain, model, call)
        if compliance:
            model = self._check_models(chain, model, call)
            request = self._check_pii(chain, model, request, call)
        if request.tools or request.tool_choice is not None:
            request = self._check_tools(chain, model, request, call)
        if kpi:
            model = self._choose_kpi(model, request, call)
        self._check_budget(chain, model, request, call)
        return model, request

    def _stop(self, call: CallContext, reason: str, model: ModelConfig, exc: Exception, **details: Any) -> None:
        self.decide(call, "stop", reason, model=model, **details)
        if self.enforce:
            raise exc

    def _check_latency(self, chain: list[RunScope], model: ModelConfig, call: CallContext) -> None:
        for scope in chain:
            if scope.max_latency_ms is not None and scope.latency_total_ms >= scope.max_latency_ms:
                reason = (f"run latency {scope.latency_total_ms:.0f} ms reached max_latency_ms "
                          f"{scope.max_latency_ms:.0f}")
                self._stop(call, reason, model, PolicyViolation(reason, policy="max_latency_ms"),
                           policy="max_latency_ms")
                return

    def _candidates(self, model: ModelConfig, call: CallContext, cross: bool) -> list[ModelConfig]:
        found: dict[str, ModelConfig] = {}
        for scope in self.scope.chain():
            for m in scope.models:
                found.setdefault(m.id, m)
        for m in call.metadata.get("kpi_candidates", ()) or ():
            if isinstance(m, ModelConfig):
                found.setdefault(m.id, m)
        return [m for m in found.values() if cross or m.provider == model.provider]

    def _violations(self, chain: list[RunScope], model: ModelConfig) -> list[tuple[str, str]]:
        return [(s.compliance.name, v) for s in chain if s.compliance is not None
                and (v := s.compliance.model_violation(model)) is not None]

    def _cross_allowed(self, chain: list[RunScope], call: CallContext) -> bool:
        """Switching to another vendor's model needs an explicit opt-in (scope argument or policy file), and
        never happens to an instrumented SDK call: its client can only reach its own vendor."""
        if call.metadata.get("sdk"):
            return False
        return any(s.allow_cross_provider or (s.compliance is not None and s.compliance.cross_provider)
                   for s in chain)

    def _check_models(self, chain: list[RunScope], model: ModelConfig, call: CallContext) -> ModelConfig:
        violations = self._violations(chain, model)
        if not violations:
            return model
        policy, reason = violations[0]
        cross = self._cross_allowed(chain, call)
        compliant = [m for m in self._candidates(model, call, cross) if not self._violations(chain, m)]
        if compliant:
            target = min(compliant, key=lambda m: self._unit_price(m))
            self.decide(call, "switch_model", f"{reason}; switching to compliant {target.id}", model=model,
                        model_used=target if self.enforce else model, policy=policy, candidate=target.id)
            return target if self.enforce else model
        where = "any provider" if cross else f"provider {model.provider!r}"
        full = f"{reason}; no compliant candidate model of {where} is declared"
        self._stop(call, full, model, PolicyViolation(full, policy=policy), policy=policy)
        return model

    def _unit_price(self, model: ModelConfig) -> float:
        try:
            rates = self.price_book.rates(model)
        except UnknownModelPriceError:
            return float("inf")
        return float(rates.input + rates.output)

    @property
    def price_book(self) -> Any:
        runtime = self.scope.runtime or state.default_runtime()
        return runtime.price_book

    def _check_pii(self, chain: list[RunScope], model: ModelConfig, request: Request,
                   call: CallContext) -> Request:
        for scope in chain:
            policy = scope.compliance
            if policy is None:
                continue
            redact, block = policy.pii_found(request)
            if block:
                reason = f"{policy.name}: request contains {_counts(block)}; this policy blocks it"
                self._stop(call, reason, model, PolicyViolation(reason, policy=policy.name),
                           policy=policy.name, pii=block)
            if redact:
                self.decide(call, "redact", f"{policy.name}: redacted {_counts(redact)} before sending",
                            model=model, policy=policy.name, pii=redact)
                if self.enforce:
                    request = redact_request(request, policy.pii_kinds)
        return request

    def _check_tools(self, chain: list[RunScope], model: ModelConfig, request: Request,
                     call: CallContext) -> Request:
        if not request.tools and request.tool_choice is None:
            return request
        for scope in chain:
            if scope.max_tool_calls is not None and scope.tool_calls >= scope.max_tool_calls:
                reason = (f"{scope.tool_calls} tool calls reached max_tool_calls={scope.max_tool_calls}; "
                          f"tools withheld from this call")
                self.decide(call, "deny_tool", reason, model=model, policy="max_tool_calls",
                            tools=[t.name for t in request.tools])
                return request.with_(tools=(), tool_choice=None) if self.enforce else request
        return request

    def _choose_kpi(self, model: ModelConfig, request: Request, call: CallContext) -> ModelConfig:
        weights = next((s.kpi_weights for s in self.scope.chain() if s.kpi_weights), None)
        if weights is None:
            return model
        chain = self.scope.chain()
        cross = self._cross_allowed(chain, call)
        candidates = [m for m in self._candidates(model, call, cross) if not self._violations(chain, m)]
        if model.id not in {m.id for m in candidates} and not self._violations(chain, model):
            candidates.insert(0, model)
        if len(candidates) < 2:
            # said in the trace, so weights that cannot act (one model, or none the run may switch to) are seen
            reason = (f"kpi_weights have nothing to choose between: {model.id} is the only candidate; list "
                      f"alternatives with run(models=[...])" + ("" if cross else " of the same provider, or "
                                                                "allow_cross_provider=True"))
            self.decide(call, "allow", reason, model=model, applied=True, policy="kpi",
                        kpi_weights=dict(weights), kpi_candidates=[m.id for m in candidates])
            return model
        choice = choose_model(candidates, weights, state.model_stats(), self.price_book,
                              estimate_input_tokens(request.messages, request.tools))
        details: dict[str, Any] = {"policy": "kpi", "kpi_weights": dict(weights), "kpi_scores": choice.scores,
                   "kpi_dimensions": list(choice.dimensions)}
        if choice.model is None or choice.model.id == model.id:
            self.decide(call, "allow", choice.reason, model=model, applied=True, **details)
            return model
        self.decide(call, "switch_model", choice.reason, model=model,
                    model_used=choice.model if self.enforce else model, candidate=choice.model.id, **details)
        return choice.model if self.enforce else model

    def _worst_case(self, model: ModelConfig, request: Request, call: CallContext) -> int | None:
        max_tokens = request.max_tokens or model.max_output_tokens or DEFAULT_MAX_OUTPUT_TOKENS
        try:
            _, worst = estimate_worst_case(self.price_book, model, request, max_tokens)
        except UnknownModelPriceError:
            if self.enforce:
                raise
            return None
        return to_micro_usd(worst)

    def _check_budget(self, chain: list[RunScope], model: ModelConfig, request: Request,
                      call: CallContext) -> None:
        limited = [s for s in chain if s.budget_micro is not None]
        if not limited:
            return
        worst = self._worst_case(model, request, call)
        if worst is None:
            self.decide(call, "allow", f"no price known for {model.id}: recorded without cost", model=model,
                        applied=True, unpriced=True)
            return
        for scope in limited:
            remaining = scope.remaining_micro() or 0
            if worst > remaining:
                reason = (f"worst case ${from_micro_usd(worst):.6f} does not fit the run budget "
                          f"(${from_micro_usd(remaining):.6f} of ${from_micro_usd(scope.budget_micro or 0):.6f} left)")
                exc = BudgetExceeded("run budget exceeded", key=f"run:{scope.run_id}",
                                     limit_usd=float(from_micro_usd(scope.budget_micro or 0)),
                                     requested_usd=float(from_micro_usd(worst)),
                                     remaining_usd=float(from_micro_usd(remaining)))
                self._stop(call, reason, model, exc, policy="budget", budget=f"run:{scope.run_id}")
                return

    def after_attempt(self, model: ModelConfig, response: Response, call: CallContext) -> None:
        # attempts of one call may run concurrently (a speculative verifier): find this one, not the last one
        record = call.attempts[-1]
        if record.model != model.id or id(record) in self._counted:  # the last attempt is nearly always it
            record = next((a for a in reversed(call.attempts) if a.model == model.id and id(a) not in self._counted),
                          record)
        self._counted.add(id(record))
        self.scope.add_attempt(record, len(response.tool_calls))
        completed = 1.0 if response.finish_reason in COMPLETED and (response.content or response.tool_calls) else 0.0
        state.model_stats().observe_attempt(model.id, latency_ms=record.latency_ms,
                                            output_tokens=response.usage.output_tokens, quality=completed)

    def after_failed_attempt(self, record: AttemptRecord, call: CallContext) -> None:
        """A failed attempt the pipeline charged (it may have been billed: a stream cut off, a timeout): the
        run pays it at once, so the next attempt's budget check, a cascade's next tier included, sees it."""
        self._counted.add(id(record))
        self.scope.add_attempt(record, 0)

    def on_finish(self, call: CallContext) -> None:
        """At Runtime.finish: trace the call's other decisions, one `allow` per attempt nobody else traced."""
        if self.scope.mode == "off":  # off: costs are summed (after_attempt), nothing is traced
            for attempt in call.attempts:
                self._counted.discard(id(attempt))
            return
        covered = set()
        if call.decisions:  # most calls have none before this: an SDK call or a single-model call
            stats = state.model_stats()
            for decision in call.decisions:
                if decision.action in VERDICT_ACTIONS and "score" in decision.details and decision.model_used:
                    stats.observe_verdict(decision.model_used, VERDICT_ACTIONS[decision.action])
                if decision.tier is not None:
                    covered.add((decision.tier, decision.model_used))
        run_id = self.scope.run_id
        for attempt in call.attempts:
            if attempt.status == "ok" and (attempt.tier, attempt.model) not in covered:
                # the record call.decide() would make, built with all its fields at once
                call.decisions.append(DecisionRecord(
                    step=len(call.decisions) + 1, timestamp=now_iso(), action="allow",
                    reason=f"{attempt.role} call sent", model_requested=call.model_requested or attempt.model,
                    model_used=attempt.model, applied=True, cost=float(attempt.cost),
                    input_tokens=attempt.input_tokens, output_tokens=attempt.output_tokens,
                    latency_ms=attempt.latency_ms, budget_remaining=self.scope.remaining_usd(settled_only=True),
                    run_id=run_id, request_id=call.request_id, tier=attempt.tier))
        for decision in call.decisions:
            self.scope.note(decision)
        for attempt in call.attempts:
            self._counted.discard(id(attempt))


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
