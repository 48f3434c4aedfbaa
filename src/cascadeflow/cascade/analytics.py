"""Running totals over an agent's results: cost, acceptance, savings, latency, per tier/route/task/severity."""

from __future__ import annotations

import heapq
import math
import statistics
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any

from cascadeflow.cascade.result import CascadeResult

LATENCY_WINDOW = 10_000  # latencies kept for percentiles (most recent)
TOP_QUERIES = 5


@dataclass(slots=True)
class Breakdown:
    """Cost and call counts of one slice (a tier's model, a route, a task type, a severity)."""

    label: str
    calls: int = 0
    cost_decimal: Decimal = Decimal(0)  # exact USD
    accepted: int = 0  # tier slices: answers of this model that were returned
    tokens: int = 0

    @property
    def cost(self) -> float:
        """USD (exact: `cost_decimal`)."""
        return float(self.cost_decimal)

    def describe(self) -> str:
        return f"{self.label} consumed ${self.cost:.4f} across {self.calls} call{'s' if self.calls != 1 else ''}"


@dataclass(slots=True)
class AnalyticsSnapshot:
    """A consistent copy of the totals. Fractions (acceptance, usage, savings_pct) format with `:.1%`.

    Costs are float USD; the exact sums are `total_cost_decimal`, `baseline_cost_decimal` and
    `total_savings_decimal`. `avg_quality` is the mean validator score of the returned answers (None when no
    signal applied to any); `budget` the agent's configured limit in USD (its monthly limit, else its
    daily one; `inf` when it has none), so `total_cost > budget * 0.9` reads as "near the limit".
    """

    total_queries: int
    total_cost: float
    avg_cost_per_query: float
    drafter_acceptance_rate: float
    drafter_usage: float  # share of queries answered by a cascade's first tier
    verifier_usage: float  # share answered by a later tier
    baseline_cost: float
    total_savings: float
    cost_savings_pct: float
    avg_latency_ms: float
    p50_latency_ms: float
    p95_latency_ms: float
    errors: int
    avg_validator_score: float | None  # mean validator score of returned answers (not correctness)
    usage_per_tier: dict[str, Breakdown]
    by_route: dict[str, Breakdown]
    by_task_type: dict[str, Breakdown]
    by_severity: dict[str, Breakdown]
    total_cost_decimal: Decimal
    baseline_cost_decimal: Decimal
    total_savings_decimal: Decimal
    budget: float = math.inf
    expensive_queries: list[tuple[float, str]] = field(default_factory=list)  # (cost USD, request_id), costliest first
    cache_hits: int = 0  # queries answered from the response cache (at $0; counted in total_queries)
    cache_savings: float = 0.0  # USD the calls that first produced those answers cost
    cache_savings_decimal: Decimal = Decimal(0)
    daily_costs: dict[date, float] = field(default_factory=dict)  # USD per UTC day of the audit records, oldest first

    @property
    def cache_hit_rate(self) -> float:
        return self.cache_hits / self.total_queries if self.total_queries else 0.0

    @property
    def drafter_acceptance(self) -> float:
        return self.drafter_acceptance_rate

    @property
    def avg_quality(self) -> float | None:
        return self.avg_validator_score

    @property
    def savings_pct(self) -> float:
        return self.cost_savings_pct

    def describe(self) -> list[str]:
        """Human-readable lines, e.g. "complex_reasoning consumed $0.0493 across 2 calls"."""
        lines = [b.describe() for b in self.by_task_type.values()]
        lines += [f"severity {b.describe()}" for b in self.by_severity.values()]
        return lines


class CascadeAnalytics:
    """Thread-safe accumulator fed with every CascadeResult; `snapshot()` reads it."""

    def __init__(self, *, task_key: str = "task_type", severity_key: str = "severity"):
        self.task_key = task_key
        self.severity_key = severity_key
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._queries = 0
            self._cascaded = 0  # queries whose route had more than one tier
            self._drafter_accepted = 0
            self._verifier_answers = 0
            self._errors = 0
            self._score_sum = 0.0
            self._scored = 0
            self._cost = Decimal(0)
            self._baseline = Decimal(0)
            self._latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)  # O(1) drop of the oldest
            self._tiers: dict[str, Breakdown] = {}
            self._routes: dict[str, Breakdown] = {}
            self._tasks: dict[str, Breakdown] = {}
            self._severities: dict[str, Breakdown] = {}
            self._top: list[tuple[Decimal, str]] = []
            self._cache_hits = 0
            self._cache_savings = Decimal(0)
            self._daily: dict[str, Decimal] = {}  # "YYYY-MM-DD" (UTC) -> USD

    def _add_day(self, timestamp: str | None, cost: Decimal) -> None:
        """Lock held. `timestamp` is the audit record's (ISO-8601 UTC): its first ten characters are the day."""
        if timestamp:
            day = timestamp[:10]
            self._daily[day] = self._daily.get(day, Decimal(0)) + cost

    def record_failure(self, cost: Decimal, *, timestamp: str | None = None) -> None:
        """A run that raised (CascadeExhausted): its attempts still cost money."""
        with self._lock:
            self._errors += 1
            self._cost += cost
            self._add_day(timestamp, cost)

    def record_cache_hit(self, result: CascadeResult, *, saved: Decimal, timestamp: str | None = None) -> None:
        """A query served from the response cache: it costs nothing and saves what its first answer cost."""
        with self._lock:
            self._add_day(timestamp, Decimal(0))
            self._queries += 1
            self._cache_hits += 1
            self._cache_savings += saved
            self._latencies.append(result.latency_ms)

    def record(self, result: CascadeResult, *, cascaded: bool, timestamp: str | None = None) -> None:
        """Count one answered query; `timestamp` (its audit record's) puts its cost on a day."""
        with self._lock:
            self._add_day(timestamp, result.total_cost_decimal)
            self._queries += 1
            self._cost += result.total_cost_decimal
            self._baseline += result.baseline_cost_decimal
            self._latencies.append(result.latency_ms)
            score = result.score
            if score is not None:
                self._score_sum += score
                self._scored += 1
            if cascaded:
                self._cascaded += 1
                if result.draft_accepted:
                    self._drafter_accepted += 1
                else:
                    self._verifier_answers += 1
            for attempt in result.tiers:
                slot = self._tiers.get(attempt.model) or self._tiers.setdefault(attempt.model,
                                                                                 Breakdown(attempt.model))
                slot.calls += 1
                slot.cost_decimal += attempt.cost_decimal
                slot.tokens += attempt.tokens
                slot.accepted += attempt.decision in ("accepted", "final")
            route = f"{result.route_kind}:{result.route_label}" if result.route_label else result.route_kind
            self._add(self._routes, route, result)
            self._add_meta(self._tasks, result.metadata, self.task_key, result)
            self._add_meta(self._severities, result.metadata, self.severity_key, result)
            if len(self._top) < TOP_QUERIES:
                heapq.heappush(self._top, (result.total_cost_decimal, result.request_id))
            else:  # push, then drop the cheapest: one sift instead of two
                heapq.heappushpop(self._top, (result.total_cost_decimal, result.request_id))

    @staticmethod
    def _add(table: dict[str, Breakdown], label: str, result: CascadeResult) -> None:
        slot = table.get(label) or table.setdefault(label, Breakdown(label))
        slot.calls += 1
        slot.cost_decimal += result.total_cost_decimal
        slot.tokens += result.usage.total_tokens

    def _add_meta(self, table: dict[str, Breakdown], meta: Mapping[str, Any], key: str,
                  result: CascadeResult) -> None:
        value = meta.get(key)
        if value is not None:
            self._add(table, str(getattr(value, "value", value)), result)

    def snapshot(self, *, budget: float = math.inf) -> AnalyticsSnapshot:
        """The totals now; `budget` is the limit in USD they are read against (inf: none)."""
        with self._lock:
            n = self._queries
            lat = sorted(self._latencies)
            savings = self._baseline - self._cost
            return AnalyticsSnapshot(
                total_queries=n, total_cost=float(self._cost),
                avg_cost_per_query=float(self._cost / n) if n else 0.0,
                drafter_acceptance_rate=self._drafter_accepted / self._cascaded if self._cascaded else 0.0,
                drafter_usage=self._drafter_accepted / n if n else 0.0,
                verifier_usage=self._verifier_answers / n if n else 0.0,
                baseline_cost=float(self._baseline), total_savings=float(savings),
                cost_savings_pct=float(savings / self._baseline) if self._baseline > 0 else 0.0,
                avg_latency_ms=statistics.fmean(lat) if lat else 0.0,
                p50_latency_ms=_percentile(lat, 0.50), p95_latency_ms=_percentile(lat, 0.95),
                errors=self._errors,
                avg_validator_score=self._score_sum / self._scored if self._scored else None,
                usage_per_tier=_copy(self._tiers), by_route=_copy(self._routes),
                by_task_type=_copy(self._tasks), by_severity=_copy(self._severities),
                total_cost_decimal=self._cost, baseline_cost_decimal=self._baseline, total_savings_decimal=savings,
                budget=budget, expensive_queries=[(float(c), rid) for c, rid in sorted(self._top, reverse=True)],
                cache_hits=self._cache_hits, cache_savings=float(self._cache_savings),
                cache_savings_decimal=self._cache_savings,
                daily_costs={date.fromisoformat(day): float(cost) for day, cost in sorted(self._daily.items())},
            )


def _copy(table: dict[str, Breakdown]) -> dict[str, Breakdown]:
    return {k: replace(v) for k, v in table.items()}


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))
    return sorted_values[index]
