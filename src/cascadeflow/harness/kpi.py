"""KPI-weighted choice among candidate models, scored from measured statistics and the price book.

score(m) = sum_d w_d * s_d(m) / sum_d w_d over the dimensions d that every scored candidate has, where
    s_quality(m) = moving average of observed acceptance / quality of m (0..1)
    s_cost(m)    = min_c expected_cost(c) / expected_cost(m)   (1.0 for the cheapest)
    s_latency(m) = min_c latency(c) / latency(m)                (1.0 for the fastest)
    s_energy(m)  = min_c energy(c) / energy(m), energy = declared extra["energy_wh_per_1k_tokens"] x tokens
expected_cost(m) prices this request's input-token bound plus m's moving-average output tokens.
Only candidates with at least one measured attempt are scored: there are no hand-set priors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from cascadeflow.errors import ConfigurationError, UnknownModelPriceError
from cascadeflow.harness.stats import ModelStats
from cascadeflow.messages import Usage
from cascadeflow.models import ModelConfig
from cascadeflow.pricing import PriceBook

KPI_DIMENSIONS: tuple[str, ...] = ("quality", "cost", "latency", "energy")


def validate_weights(weights: Mapping[str, float] | None) -> dict[str, float] | None:
    """Check KPI weights: known names, non-negative numbers, not all zero."""
    if weights is None:
        return None
    if not isinstance(weights, Mapping):
        raise ConfigurationError(f"kpi_weights must be a dict like {{'quality': 0.6, 'cost': 0.4}}, got {weights!r}")
    unknown = set(weights) - set(KPI_DIMENSIONS)
    if unknown:
        raise ConfigurationError(f"unknown kpi_weights {sorted(unknown)}; use {', '.join(KPI_DIMENSIONS)}")
    out: dict[str, float] = {}
    for key, value in weights.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ConfigurationError(f"kpi_weights[{key!r}] must be a non-negative number, got {value!r}")
        out[key] = float(value)
    if not any(out.values()):
        raise ConfigurationError("kpi_weights are all zero: give at least one dimension a positive weight")
    return out


@dataclass(slots=True, kw_only=True)
class KpiChoice:
    model: ModelConfig | None  # None: no candidate could be scored
    reason: str
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # model id -> {dimension: s, "score": x}
    dimensions: tuple[str, ...] = ()


def _expected_cost(price_book: PriceBook, model: ModelConfig, input_tokens: int, out_tokens: float,
                   latency_ms: float) -> Decimal | None:
    try:
        return price_book.cost(model, Usage(input_tokens, round(out_tokens)), latency_s=latency_ms / 1000)
    except UnknownModelPriceError:
        return None


def _relative(values: dict[str, float]) -> dict[str, float]:
    best = min(values.values())
    return {k: (1.0 if v <= best else (best / v if v > 0 else 0.0)) for k, v in values.items()}


def _measure(candidates: Sequence[ModelConfig], stats: ModelStats, price_book: PriceBook,
             input_tokens: int) -> dict[str, dict[str, float]]:
    raw: dict[str, dict[str, float]] = {}
    for model in candidates:
        stat = stats.get(model.id)
        if stat is None or stat.calls == 0 or stat.latency_ms is None:
            continue
        row: dict[str, float] = {"latency": max(stat.latency_ms, 1e-6)}
        out_tokens = stat.output_tokens or 0.0
        cost = _expected_cost(price_book, model, input_tokens, out_tokens, stat.latency_ms)
        if cost is not None:
            row["cost"] = float(cost)
        if stat.quality is not None:
            row["quality"] = stat.quality
        energy = model.extra.get("energy_wh_per_1k_tokens")
        if energy is not None:
            row["energy"] = float(energy) * (input_tokens + out_tokens) / 1000
        raw[model.id] = row
    return raw


def choose_model(candidates: Sequence[ModelConfig], weights: Mapping[str, float], stats: ModelStats,
                 price_book: PriceBook, input_tokens: int) -> KpiChoice:
    """The best-scoring candidate by the documented formula, with every candidate's scores."""
    raw = _measure(candidates, stats, price_book, input_tokens)
    if not raw:
        names = ", ".join(m.id for m in candidates)
        return KpiChoice(model=None,
                         reason=f"no statistics yet for any candidate ({names}); keeping the requested model")
    wanted = [d for d in KPI_DIMENSIONS if weights.get(d, 0) > 0]
    dims = tuple(d for d in wanted if all(d in row for row in raw.values()))
    if not dims:
        return KpiChoice(model=None,
                         reason=f"no measured {'/'.join(wanted)} for the candidates yet; keeping the requested model")
    scores: dict[str, dict[str, float]] = {mid: {} for mid in raw}
    for dim in dims:
        values = {mid: row[dim] for mid, row in raw.items()}
        relative = values if dim == "quality" else _relative(values)
        for mid, s in relative.items():
            scores[mid][dim] = round(s, 6)
    total = sum(weights[d] for d in dims)
    for mid, row in scores.items():
        row["score"] = round(sum(weights[d] * row[d] for d in dims) / total, 6)
    best_id = max(scores, key=lambda mid: (scores[mid]["score"], mid))
    best = next(m for m in candidates if m.id == best_id)
    unscored = [m.id for m in candidates if m.id not in raw]
    dropped = [d for d in wanted if d not in dims]
    note = (f"; not yet measured: {', '.join(unscored)}" if unscored else "") + \
           (f"; dimensions without data for every candidate: {', '.join(dropped)}" if dropped else "")
    reason = f"KPI score {scores[best_id]['score']:.3f} is the best of {len(scores)} measured candidates{note}"
    return KpiChoice(model=best, reason=reason, scores=scores, dimensions=dims)
