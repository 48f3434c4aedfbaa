"""Operating points and baselines of a replayed policy: cost, strong-call share, quality, gap recovered.

Quality is the mean recorded label (1/0) or scaled score of the answer the policy returned. Baselines are
computed from the same recorded answers and the same price book: cheap-only, strong-only, random routing
at the policy's strong-call share (its expectation, not one random draw), and the oracle router (sends a
query to the strong model exactly when the cheap answer is worse than the strong one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from statistics import NormalDist
from typing import Any

from cascadeflow.cascade.outcomes import QueryOutcome, tally
from cascadeflow.errors import ConfigurationError
from cascadeflow.messages import Usage
from cascadeflow.pricing import PriceBook
from cascadeflow.replay.format import ReplayDataset, estimate_message_tokens, estimate_tokens


@dataclass(slots=True)
class OperatingPoint:
    name: str
    threshold: float | None
    strong_call_fraction: float
    cost_usd: float
    cost_fraction: float
    quality: float
    quality_fraction: float
    gap_recovered: float | None
    n: int
    details: dict[str, Any] = field(default_factory=dict)
    # standard error of the mean per-query difference (this policy's quality - strong-only quality) on the
    # same queries; what `choose_threshold(confidence=...)` discounts. None for baselines.
    paired_se: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reference:
    """Per-query recorded quality and cost of the cheap and the strong model (for baselines and fractions)."""

    cheap: str
    strong: str
    cheap_quality: tuple[float, ...]
    strong_quality: tuple[float, ...]
    cheap_cost: tuple[Decimal, ...]
    strong_cost: tuple[Decimal, ...]

    @property
    def n(self) -> int:
        return len(self.cheap_quality)

    @property
    def q_cheap(self) -> float:
        return sum(self.cheap_quality) / self.n

    @property
    def q_strong(self) -> float:
        return sum(self.strong_quality) / self.n

    @property
    def strong_total(self) -> Decimal:
        return sum(self.strong_cost, Decimal(0))


def recorded_cost(dataset: ReplayDataset, alias: str, price_book: PriceBook) -> tuple[Decimal, ...]:
    """What each query's recorded answer of `alias` costs by the price book (estimating unrecorded tokens)."""
    cfg = dataset.models[alias]
    costs = []
    for query in dataset.queries:
        answer = query.answers[alias]
        usage = Usage(
            input_tokens=answer.input_tokens if answer.input_tokens is not None
            else estimate_message_tokens(query.messages),
            output_tokens=answer.output_tokens if answer.output_tokens is not None
            else estimate_tokens(answer.content))
        costs.append(price_book.cost(cfg, usage, latency_s=(answer.latency_ms or 0.0) / 1000))
    return tuple(costs)


def reference(dataset: ReplayDataset, cheap: str, strong: str, price_book: PriceBook) -> Reference:
    return Reference(cheap=cheap, strong=strong,
                     cheap_quality=tuple(q.answers[cheap].quality for q in dataset.queries),
                     strong_quality=tuple(q.answers[strong].quality for q in dataset.queries),
                     cheap_cost=recorded_cost(dataset, cheap, price_book),
                     strong_cost=recorded_cost(dataset, strong, price_book))


def point(name: str, ref: Reference, *, threshold: float | None, strong_fraction: float, cost: Decimal,
          quality: float, paired_se: float | None = None, **details: Any) -> OperatingPoint:
    gap = ref.q_strong - ref.q_cheap
    return OperatingPoint(
        name=name, threshold=threshold, strong_call_fraction=strong_fraction, cost_usd=float(cost),
        cost_fraction=float(cost / ref.strong_total) if ref.strong_total else 0.0, quality=quality,
        quality_fraction=quality / ref.q_strong if ref.q_strong else 0.0,
        gap_recovered=(quality - ref.q_cheap) / gap if gap > 0 else None, n=ref.n, details=details,
        paired_se=paired_se)


def paired_standard_error(qualities: Sequence[float], strong_quality: Sequence[float]) -> float:
    """The standard error of the mean of (quality_i - strong_quality_i) over the same queries.

    Pairing removes the variance both share: on queries both answer alike the difference is 0, so the
    error reflects only the queries where the policy and the strong model disagree."""
    n = len(qualities)
    if n != len(strong_quality):
        raise ValueError(f"{n} qualities for {len(strong_quality)} strong-model qualities")
    if n < 2:
        return 0.0
    diffs = [q - s for q, s in zip(qualities, strong_quality, strict=True)]
    mean = sum(diffs) / n
    variance = sum((d - mean) ** 2 for d in diffs) / (n - 1)
    return math.sqrt(variance / n)


def policy_point(name: str, ref: Reference, outcomes: Sequence[QueryOutcome], *,
                 threshold: float | None) -> OperatingPoint:
    """The operating point of an engine run (outcomes in the dataset's query order)."""
    if len(outcomes) != ref.n:
        raise ValueError(f"{len(outcomes)} outcomes for {ref.n} queries")
    totals = tally(outcomes)
    if totals.scored != ref.n:
        raise ValueError(f"{ref.n - totals.scored} outcomes carry no recorded quality")
    strong_calls = sum(1 for o in outcomes if ref.strong in o.called)
    # answered by the cheapest model (for two tiers the same as draft_accepted; kept for longer cascades)
    cheapest = sum(1 for o in outcomes if o.final_model == ref.cheap)
    extra = {"refused": totals.refused} if totals.refused else {}
    se = paired_standard_error([o.quality for o in outcomes], ref.strong_quality)
    return point(name, ref, threshold=threshold, strong_fraction=strong_calls / ref.n, cost=totals.cost,
                 quality=totals.quality or 0.0, paired_se=se, draft_acceptance=cheapest / ref.n, **extra)


def baselines(ref: Reference, strong_fraction: float | None = None) -> list[OperatingPoint]:
    """Cheap-only, strong-only, oracle and (when a share is given) random routing at that share."""
    cheap_total = sum(ref.cheap_cost, Decimal(0))
    out = [
        point("cheap-only", ref, threshold=None, strong_fraction=0.0, cost=cheap_total, quality=ref.q_cheap),
        point("strong-only", ref, threshold=None, strong_fraction=1.0, cost=ref.strong_total,
              quality=ref.q_strong),
    ]
    to_strong = [s > c for c, s in zip(ref.cheap_quality, ref.strong_quality, strict=True)]
    oracle_cost = sum((s if up else c for c, s, up in zip(ref.cheap_cost, ref.strong_cost, to_strong,
                                                           strict=True)), Decimal(0))
    oracle_quality = sum(max(c, s) for c, s in zip(ref.cheap_quality, ref.strong_quality, strict=True)) / ref.n
    out.append(point("oracle", ref, threshold=None, strong_fraction=sum(to_strong) / ref.n, cost=oracle_cost,
                     quality=oracle_quality))
    if strong_fraction is not None:
        out.append(random_point(ref, strong_fraction))
    return out


def random_point(ref: Reference, fraction: float) -> OperatingPoint:
    """The expectation of routing each query to the strong model with probability `fraction`."""
    share = Decimal(str(fraction))
    cost = (1 - share) * sum(ref.cheap_cost, Decimal(0)) + share * ref.strong_total
    quality = (1 - fraction) * ref.q_cheap + fraction * ref.q_strong
    return point(f"random@{fraction:.3f}", ref, threshold=None, strong_fraction=fraction, cost=cost,
                 quality=quality)


def check_confidence(confidence: float | None) -> None:
    """Refuse a confidence that is not a one-sided level in [0.5, 1) (0.5 is the plain rule)."""
    if confidence is None:
        return
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0.5 <= confidence < 1:
        raise ConfigurationError(f"confidence is a one-sided level in [0.5, 1) such as 0.95 (0.5: choose for the "
                                 f"target exactly), got {confidence!r}")


def lower_quality_fraction(p: OperatingPoint, confidence: float | None) -> float:
    """The point's quality share, less z standard errors of its paired difference to the strong model
    (z of the one-sided `confidence`; None: the share as measured)."""
    if confidence is None:
        return p.quality_fraction
    if p.paired_se is None:
        raise ValueError(f"operating point {p.name!r} has no paired_se; a confidence needs policy points")
    if p.quality_fraction <= 0:
        return p.quality_fraction
    q_strong = p.quality / p.quality_fraction
    return (p.quality - NormalDist().inv_cdf(confidence) * p.paired_se) / q_strong


def choose_threshold(points: Sequence[OperatingPoint], target_quality_fraction: float,
                     confidence: float | None = None) -> OperatingPoint | None:
    """The cheapest operating point reaching the target share of strong-only quality (None: none does).

    With `confidence` (e.g. 0.95) a point must reach the target by the one-sided lower confidence bound of
    its paired difference to the strong model, not by its measured share: a threshold that only just
    reaches the target on calibration data falls short on new data about half the time."""
    check_confidence(confidence)
    reaching = [p for p in points if p.threshold is not None
                and lower_quality_fraction(p, confidence) >= target_quality_fraction]
    if not reaching:
        return None
    return min(reaching, key=lambda p: (p.cost_usd, -p.quality, p.threshold))
