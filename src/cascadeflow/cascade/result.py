"""What a cascade run returns: `CascadeResult` with one `TierAttempt` per model attempt."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from cascadeflow.messages import Response, ToolCall, Usage

Decision = Literal["accepted", "rejected", "error", "final", "cancelled"]


@dataclass(slots=True, kw_only=True)
class TierAttempt:
    """One tier's attempt: what it cost and what the cascade decided about its answer."""

    tier: int
    model: str  # 'provider/model'
    decision: Decision
    reason: str
    score: float | None = None  # the validator's score; None when not validated or no signal applied
    signals: tuple[str, ...] = ()  # names of the signals the verdict used
    input_tokens: int = 0
    output_tokens: int = 0
    cost_decimal: Decimal = Decimal(0)  # exact USD
    latency_ms: float = 0.0
    error: str | None = None
    speculative: bool = False  # started before the previous tier's verdict

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def cost(self) -> float:
        """USD (exact: `cost_decimal`)."""
        return float(self.cost_decimal)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tier": self.tier, "model": self.model, "decision": self.decision, "reason": self.reason,
            "score": self.score, "signals": list(self.signals), "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens, "cost_usd": self.cost,
            "latency_ms": round(self.latency_ms, 3), "error": self.error, "speculative": self.speculative,
        }


@dataclass(slots=True)
class CascadeResult:
    """The answer of a cascade run and the full account of how it was reached.

    `total_cost` sums every attempt (rejected drafts, failed and speculative tiers included).
    `baseline_cost` is what the strongest tier of the route would have cost answering directly: its actual
    cost when it was called, otherwise an estimate from the accepted answer's token counts at its price
    (`baseline_estimated=True`). `savings_pct` is a fraction (format it with `:.1%`).
    Costs are float USD, to compute with; the exact amounts are `total_cost_decimal`,
    `baseline_cost_decimal` and `savings_decimal` (Decimal USD).
    """

    content: str
    model_used: str
    draft_accepted: bool
    tiers: list[TierAttempt]
    total_cost_decimal: Decimal
    baseline_cost_decimal: Decimal
    baseline_estimated: bool
    latency_ms: float
    usage: Usage
    request_id: str
    tool_calls: tuple[ToolCall, ...] = ()
    routing_reason: str = ""
    route_kind: str = "default"
    route_label: str | None = None
    response: Response | None = None
    user_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    cache_hit: bool = False  # served from the response cache: total_cost is 0, baseline_cost what it saved

    @property
    def total_cost(self) -> float:
        """USD over every attempt (exact: `total_cost_decimal`)."""
        return float(self.total_cost_decimal)

    @property
    def baseline_cost(self) -> float:
        """USD the strongest tier would have cost (exact: `baseline_cost_decimal`)."""
        return float(self.baseline_cost_decimal)

    @property
    def savings_decimal(self) -> Decimal:
        return self.baseline_cost_decimal - self.total_cost_decimal

    @property
    def savings(self) -> float:
        return float(self.savings_decimal)

    @property
    def savings_pct(self) -> float:
        if self.baseline_cost_decimal <= 0:
            return 0.0
        return float(self.savings_decimal / self.baseline_cost_decimal)

    @property
    def cost(self) -> float:
        return self.total_cost

    @property
    def text(self) -> str:
        return self.content

    @property
    def accepted_tier(self) -> int:
        """Index of the tier whose answer was returned."""
        return next(t.tier for t in reversed(self.tiers) if t.decision in ("accepted", "final"))

    @property
    def score(self) -> float | None:
        """The validator's score of the returned answer (None if no signal applied)."""
        return next((t.score for t in reversed(self.tiers) if t.decision in ("accepted", "final")), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id, "content": self.content, "model_used": self.model_used,
            "draft_accepted": self.draft_accepted, "tiers": [t.to_dict() for t in self.tiers],
            "total_cost": self.total_cost, "baseline_cost": self.baseline_cost,
            "baseline_estimated": self.baseline_estimated, "savings": self.savings,
            "savings_pct": self.savings_pct, "latency_ms": round(self.latency_ms, 3),
            "input_tokens": self.usage.input_tokens, "output_tokens": self.usage.output_tokens,
            "routing_reason": self.routing_reason, "route_kind": self.route_kind, "route_label": self.route_label,
            "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in self.tool_calls],
            "user_id": self.user_id, "metadata": dict(self.metadata), "cache_hit": self.cache_hit,
        }
