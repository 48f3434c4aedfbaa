"""The storm's outcome in numbers, from what was written (the audit log, the days, the reports): alerts,
incidents, what was investigated, queued and drained, root causes found, calls and cost per model and
tier, and what the same calls would have cost answered by the premium model alone (`premium.py`, the
figure the dashboard's cost panel shows)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cascadeflow import ModelConfig, PriceBook

from .dispatch import DayResult
from .events import ModelAnswered
from .investigation import InvestigationReport
from .premium import all_premium_cost

NO_ROOT_CAUSE = ("unknown", "healthy")  # "healthy": nothing is wrong now; "unknown": only symptoms


@dataclass(slots=True)
class ModelCalls:
    model: str
    tier: str
    calls: int = 0
    cost_usd: Decimal = Decimal(0)


@dataclass(slots=True)
class StormSummary:
    alerts: int
    incidents: int
    investigated: int
    queued: int  # incidents deferred at least once
    drained: int  # deferred incidents investigated on a later day
    still_queued: int
    root_causes: int
    healthy: int
    days: list[DayResult]
    audit_records: int
    model_answers: int  # `model_answered` events: one per completed call, to set beside the audit records
    cost_usd: Decimal
    premium_usd: Decimal  # all premium, as premium.py defines it
    premium_model: str
    by_model: list[ModelCalls] = field(default_factory=list)
    categories: dict[str, int] = field(default_factory=dict)

    @property
    def calls(self) -> int:
        return sum(m.calls for m in self.by_model)

    @property
    def saved_share(self) -> float:
        """Share of the all-premium cost not spent (0.0 when nothing was spent on either)."""
        return float(1 - self.cost_usd / self.premium_usd) if self.premium_usd else 0.0

    @property
    def cost_per_incident(self) -> Decimal:
        return self.cost_usd / self.investigated if self.investigated else Decimal(0)

    @property
    def premium_per_incident(self) -> Decimal:
        return self.premium_usd / self.investigated if self.investigated else Decimal(0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "alerts": self.alerts, "incidents": self.incidents, "investigated": self.investigated,
            "queued": self.queued, "drained": self.drained, "still_queued": self.still_queued,
            "root_causes": self.root_causes, "healthy": self.healthy, "categories": self.categories,
            "audit_records": self.audit_records, "model_answers": self.model_answers, "calls": self.calls,
            "cost_usd": float(self.cost_usd), "premium_usd": float(self.premium_usd),
            "premium_model": self.premium_model, "saved_share": self.saved_share,
            "cost_per_incident_usd": float(self.cost_per_incident),
            "premium_per_incident_usd": float(self.premium_per_incident),
            "by_model": [{"model": m.model, "tier": m.tier, "calls": m.calls, "cost_usd": float(m.cost_usd)}
                         for m in self.by_model],
            "days": [{"day": d.day, "limit_usd": d.limit_usd, "spent_usd": d.spent_usd,
                      "investigated": d.investigated, "queued": d.queued, "failed": d.failed} for d in self.days],
        }


def calls_by_model(records: Iterable[Mapping[str, Any]], tier_of: Callable[[str], str]) -> list[ModelCalls]:
    """Every attempt that reached a model (a cascade's draft and its escalation are two calls)."""
    out: dict[str, ModelCalls] = {}
    for record in records:
        for attempt in record.get("tiers") or []:
            model = str(attempt.get("model") or "?")
            row = out.setdefault(model, ModelCalls(model, tier_of(model)))
            row.calls += 1
            row.cost_usd += Decimal(str(attempt.get("cost_usd") or 0))
    return sorted(out.values(), key=lambda m: (m.tier, m.model))


def summarise_storm(*, alerts: int, incidents: int, days: Sequence[DayResult], deferred: set[str],
                    still_queued: int, reports: Mapping[str, InvestigationReport],
                    records: Sequence[Mapping[str, Any]], tier_of: Callable[[str], str], premium: ModelConfig,
                    price_book: PriceBook) -> StormSummary:
    later = {i for d in days[1:] for i in d.investigated}
    categories: dict[str, int] = {}
    for report in reports.values():
        categories[report.diagnosis.category] = categories.get(report.diagnosis.category, 0) + 1
    answers = sum(1 for r in reports.values() for e in r.log.events if isinstance(e, ModelAnswered))
    return StormSummary(
        alerts=alerts, incidents=incidents, investigated=len(reports), queued=len(deferred),
        drained=len(later & deferred), still_queued=still_queued,
        root_causes=sum(n for c, n in categories.items() if c not in NO_ROOT_CAUSE),
        healthy=categories.get("healthy", 0), days=list(days), audit_records=len(records), model_answers=answers,
        cost_usd=sum((Decimal(str(r.get("cost_usd") or 0)) for r in records), Decimal(0)),
        premium_usd=all_premium_cost(records, premium, price_book), premium_model=premium.id,
        by_model=calls_by_model(records, tier_of), categories=categories)
