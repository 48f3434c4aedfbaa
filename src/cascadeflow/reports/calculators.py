"""ROI of a cascade and the break-even volume of a self-hosted drafter: plain arithmetic with its units named.

Every cost is USD per query (a model's price per million tokens times the query's tokens: `query_cost`).
The formulas, with a worked example, are in docs/reports.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cascadeflow.errors import ConfigurationError

MONTHS_PER_YEAR = 12


def _non_negative(**values: float) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ConfigurationError(f"{name} must be a non-negative number, got {value!r}")


def _share(**values: float) -> None:
    _non_negative(**values)
    for name, value in values.items():
        if value > 1:
            raise ConfigurationError(f"{name} is a share between 0 and 1 (0.7 for 70%), got {value!r}")


def query_cost(*, input_tokens: float, output_tokens: float, input_per_million: float,
               output_per_million: float) -> float:
    """USD of one query: tokens times the price per million tokens, input and output apart."""
    _non_negative(input_tokens=input_tokens, output_tokens=output_tokens, input_per_million=input_per_million,
                  output_per_million=output_per_million)
    return (input_tokens * input_per_million + output_tokens * output_per_million) / 1_000_000


def cascade_query_cost(*, drafter: float, verifier: float, acceptance: float, cache_hit_rate: float = 0.0) -> float:
    """Expected USD per query of a two-tier cascade behind a cache: a hit costs nothing; every other query
    pays the draft, and a rejected draft (1 - acceptance) pays the verifier on top:
    (1 - cache_hit_rate) x (drafter + (1 - acceptance) x verifier)."""
    _non_negative(drafter=drafter, verifier=verifier)
    _share(acceptance=acceptance, cache_hit_rate=cache_hit_rate)
    return (1 - cache_hit_rate) * (drafter + (1 - acceptance) * verifier)


@dataclass(frozen=True, slots=True, kw_only=True)
class RoiEstimate:
    """Monthly and annual cost with and without the cascade. `payback_months` is how long the savings take
    to repay `one_time_cost` (None when nothing is saved); `first_year_roi` is (annual savings - one-time
    cost) / one-time cost (None without a one-time cost)."""

    baseline_monthly: float
    cascade_monthly: float
    monthly_savings: float
    annual_savings: float
    savings_pct: float
    payback_months: float | None
    first_year_roi: float | None


def roi(*, monthly_queries: float, baseline_cost_per_query: float, cascade_cost_per_query: float,
        monthly_overhead: float = 0.0, one_time_cost: float = 0.0) -> RoiEstimate:
    """Baseline = queries x baseline cost per query; cascade = queries x cascade cost per query + overhead
    (what running the cascade costs per month besides model calls); savings = baseline - cascade, x12 a year."""
    _non_negative(monthly_queries=monthly_queries, baseline_cost_per_query=baseline_cost_per_query,
                  cascade_cost_per_query=cascade_cost_per_query, monthly_overhead=monthly_overhead,
                  one_time_cost=one_time_cost)
    baseline = monthly_queries * baseline_cost_per_query
    cascade = monthly_queries * cascade_cost_per_query + monthly_overhead
    saved = baseline - cascade
    payback = one_time_cost / saved if saved > 0 else None
    first_year = (MONTHS_PER_YEAR * saved - one_time_cost) / one_time_cost if one_time_cost > 0 else None
    return RoiEstimate(baseline_monthly=baseline, cascade_monthly=cascade, monthly_savings=saved,
                       annual_savings=MONTHS_PER_YEAR * saved,
                       savings_pct=saved / baseline if baseline else 0.0, payback_months=payback,
                       first_year_roi=first_year)


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakEven:
    """The self-hosting decision at `monthly_queries`. `break_even_queries` is the monthly volume at which
    the cloud drafter costs as much as the self-hosted one; `monthly_savings` is negative below it."""

    decision: str  # "self_host" | "cloud"
    break_even_queries: float
    cloud_monthly: float
    self_hosted_monthly: float
    monthly_savings: float


def self_hosting_break_even(*, monthly_queries: float, drafter_cost_per_query: float, self_hosted_monthly: float,
                            drafted_share: float = 1.0) -> BreakEven:
    """Cloud drafter per month = queries x drafted share x drafter cost per query; break-even volume =
    self-hosted monthly cost / (drafted share x drafter cost per query).

    `drafted_share` is the share of queries the drafter sees: in a cascade every query is drafted first,
    accepted or not, so it is 1.0 unless a router sends some queries past the drafter. (Counting only the
    accepted drafts undercounts the cloud bill by the rejected ones.)"""
    _non_negative(monthly_queries=monthly_queries, drafter_cost_per_query=drafter_cost_per_query,
                  self_hosted_monthly=self_hosted_monthly)
    _share(drafted_share=drafted_share)
    per_query = drafted_share * drafter_cost_per_query
    cloud = monthly_queries * per_query
    threshold = self_hosted_monthly / per_query if per_query > 0 else math.inf
    return BreakEven(decision="self_host" if monthly_queries > threshold else "cloud",
                     break_even_queries=threshold, cloud_monthly=cloud,
                     self_hosted_monthly=self_hosted_monthly, monthly_savings=cloud - self_hosted_monthly)
