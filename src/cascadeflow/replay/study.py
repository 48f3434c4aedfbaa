"""A replay study: operating points of a cascade on one dataset, its baselines, and a threshold chosen on
calibration data for a target quality, then measured on the evaluated data (never on the same queries)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cascadeflow.errors import ConfigurationError
from cascadeflow.pricing import PriceBook
from cascadeflow.replay.engine import Progress, ReplaySetup, record_verdicts, replay, sweep, sweep_recorded
from cascadeflow.replay.format import ReplayDataset
from cascadeflow.replay.report import (
    OperatingPoint,
    QueryOutcome,
    Reference,
    baselines,
    check_confidence,
    choose_threshold,
    policy_point,
    random_point,
    reference,
)

GRID = tuple(round(i / 20, 2) for i in range(21))  # thresholds of an engine sweep of longer cascades


@dataclass(slots=True, kw_only=True)
class StudyResult:
    dataset: str
    models: tuple[str, ...]
    n: int
    points: list[OperatingPoint] = field(default_factory=list)
    baselines: list[OperatingPoint] = field(default_factory=list)
    target: dict[str, Any] | None = None
    draft_signals: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "models": list(self.models), "n": self.n,
                "operating_points": [p.to_dict() for p in self.points],
                "baselines": [b.to_dict() for b in self.baselines], "target": self.target,
                "draft_signals": self.draft_signals}


def signal_counts(outcomes: Sequence[QueryOutcome]) -> dict[str, int]:
    """How often each validator signal took part in a draft verdict."""
    counts: Counter[str] = Counter()
    for outcome in outcomes:
        if outcome.signals:
            counts.update(outcome.signals[0])
    return dict(counts.most_common())


_VETO = re.compile(r"^rejected: (\w+): ")
_WEAKEST = re.compile(r"weakest (\w+): ")


def escalation_causes(outcomes: Sequence[QueryOutcome]) -> dict[str, int]:
    """Why drafts were escalated, from the engine's verdict reasons: `veto:<signal>`, `weakest:<signal>`
    (score below the bar; with a calibration the weakest signal is named, the probability decided),
    `no-signal`, or `other`."""
    counts: Counter[str] = Counter()
    for outcome in outcomes:
        if len(outcome.called) < 2 or not outcome.reasons:
            continue
        reason = outcome.reasons[0]
        veto, weakest = _VETO.match(reason), _WEAKEST.search(reason)
        if "no signal" in reason:
            counts["no-signal"] += 1
        elif veto and not reason.startswith(("rejected: score", "rejected: p=")):
            counts[f"veto:{veto.group(1)}"] += 1
        elif weakest:
            counts[f"weakest:{weakest.group(1)}"] += 1
        else:
            counts["other"] += 1
    return dict(counts.most_common())


async def sweep_points(setup: ReplaySetup, ref: Reference, *, progress: Progress | None = None,
                       thresholds: Sequence[float] | None = None) -> tuple[list[OperatingPoint], dict[str, int]]:
    """Operating points over thresholds: from recorded draft verdicts for two tiers, else an engine run each."""
    if len(setup.models) == 2 and not setup.quality.thresholds_by_complexity and setup.budget_usd is None:
        verdicts = await record_verdicts(setup, progress=progress)
        runs = sweep_recorded(verdicts, thresholds)
        signals = signal_counts(verdicts.escalated)
    else:
        runs = await sweep(setup, thresholds or GRID, progress=progress)
        signals = signal_counts(next(iter(runs.values())))
    return [policy_point("cascade", ref, outcomes, threshold=t) for t, outcomes in runs.items()], signals


async def run_study(dataset: ReplayDataset, setup: ReplaySetup, *, threshold: float | None = None,
                    do_sweep: bool = False, calibration: ReplaySetup | None = None,
                    target_quality: float | None = None, confidence: float | None = None,
                    progress: Progress | None = None) -> StudyResult:
    """Evaluate `setup` on `dataset`; with a target, the threshold is chosen on `calibration` only (with
    `confidence`, by the lower confidence bound of its quality there: see `choose_threshold`)."""
    if target_quality is not None and calibration is None:
        raise ConfigurationError("--target-quality needs calibration data (--calibrate-on TRAIN.jsonl) that is "
                                 "not the evaluated data")
    if target_quality is not None and not 0 < target_quality <= 1.5:
        raise ConfigurationError(f"target quality is a share of strong-only quality (e.g. 0.95), got {target_quality}")
    check_confidence(confidence)
    cheap, strong = setup.models[0], setup.models[-1]
    ref = reference(dataset, cheap, strong, setup.price_book)
    study = StudyResult(dataset=dataset.name, models=setup.models, n=len(dataset.queries))
    if do_sweep:
        study.points, study.draft_signals = await sweep_points(setup, ref, progress=progress)
    if threshold is not None:
        outcomes = await replay(setup.with_threshold(threshold), progress=progress)
        study.points.append(policy_point("cascade", ref, outcomes, threshold=threshold))
        study.draft_signals = study.draft_signals or signal_counts(outcomes)
    if target_quality is not None and calibration is not None:
        study.target = await _target(setup, ref, calibration, target_quality, confidence, progress)
    fractions = sorted({round(p.strong_call_fraction, 4) for p in study.points})
    study.baselines = baselines(ref) + [random_point(ref, f) for f in fractions]
    return study


def run_study_sync(dataset: ReplayDataset, setup: ReplaySetup, **options: Any) -> StudyResult:
    """The synchronous twin of `run_study` (refused inside a running event loop)."""
    from cascadeflow.sync import run_sync

    return run_sync(run_study(dataset, setup, **options), what="run_study_sync")


async def _target(setup: ReplaySetup, ref: Reference, calibration: ReplaySetup, target: float,
                  confidence: float | None, progress: Progress | None) -> dict[str, Any]:
    cal_ref = reference(calibration.dataset, calibration.models[0], calibration.models[-1],
                        calibration.price_book)
    cal_points, _ = await sweep_points(calibration, cal_ref, progress=progress)
    chosen = choose_threshold(cal_points, target, confidence)
    out: dict[str, Any] = {"target_quality_fraction": target, "confidence": confidence,
                           "calibration_dataset": calibration.dataset.name,
                           "calibration_n": len(calibration.dataset.queries),
                           "chosen_on_calibration": chosen.to_dict() if chosen else None}
    if chosen is None:
        out["evaluated"] = None
        out["note"] = "no threshold reached the target on the calibration data"
        return out
    outcomes = await replay(setup.with_threshold(_threshold(chosen)), progress=progress)  # a real run
    evaluated = policy_point("cascade@chosen", ref, outcomes, threshold=chosen.threshold)
    out["evaluated"] = evaluated.to_dict()
    out["random_at_same_fraction"] = random_point(ref, evaluated.strong_call_fraction).to_dict()
    out["draft_signals"] = signal_counts(outcomes)
    return out


async def cross_validate(folds: Sequence[tuple[ReplayDataset, ReplayDataset]], models: Sequence[str],
                         quality: Any, *, target_quality: float, fit: bool, confidence: float | None = None,
                         progress: Progress | None = None, price_book: PriceBook | None = None) -> dict[str, Any]:
    """Per fold: fit the calibration (optional) and choose the threshold on the training part (with
    `confidence`, by the lower confidence bound of its quality there), then run the real engine at that
    threshold on the held-out part. The pooled point covers every held-out query once. When no threshold
    reaches the target on a training part, its highest-quality threshold is used and the fold says so."""
    from cascadeflow.replay.engine import fit_calibration, with_calibration

    check_confidence(confidence)
    per_fold: list[dict[str, Any]] = []
    pooled_queries: list[Any] = []
    pooled_outcomes: list[Any] = []
    for train, test in folds:
        cal_setup = ReplaySetup.build(train, models, quality, price_book=price_book)
        eval_setup = ReplaySetup.build(test, models, quality, price_book=price_book)
        if fit:
            fitted = await fit_calibration(cal_setup)
            cal_setup, eval_setup = with_calibration(cal_setup, fitted), with_calibration(eval_setup, fitted)
        cal_ref = reference(train, cal_setup.models[0], cal_setup.models[-1], cal_setup.price_book)
        cal_points, _ = await sweep_points(cal_setup, cal_ref, progress=progress)
        chosen = choose_threshold(cal_points, target_quality, confidence)
        reached = chosen is not None
        if chosen is None:
            chosen = max(cal_points, key=lambda p: (p.quality, -p.cost_usd))
        outcomes = await replay(eval_setup.with_threshold(_threshold(chosen)), progress=progress)
        ref = reference(test, eval_setup.models[0], eval_setup.models[-1], eval_setup.price_book)
        per_fold.append({"train": train.name, "test": test.name, "target_reached_on_calibration": reached,
                         "chosen_on_calibration": chosen.to_dict(),
                         "evaluated": policy_point("cascade", ref, outcomes, threshold=chosen.threshold).to_dict()})
        pooled_queries.extend(test.queries)
        pooled_outcomes.extend(outcomes)
    union = folds[0][1].subset(pooled_queries, "pooled held-out")
    first = ReplaySetup.build(union, models, quality, price_book=price_book)
    ref = reference(union, first.models[0], first.models[-1], first.price_book)
    pooled = policy_point("cascade (pooled held-out)", ref, pooled_outcomes, threshold=None)
    return {"target_quality_fraction": target_quality, "confidence": confidence, "calibration_fitted": fit,
            "folds": per_fold,
            "pooled": pooled.to_dict(), "random_at_same_fraction": random_point(ref, pooled.strong_call_fraction
                                                                                ).to_dict(),
            "baselines": [b.to_dict() for b in baselines(ref)], "draft_signals": signal_counts(pooled_outcomes),
            "escalation_causes": escalation_causes(pooled_outcomes)}


def _threshold(point: OperatingPoint) -> float:
    """The acceptance threshold of a swept operating point (the baselines, which have none, are never chosen)."""
    if point.threshold is None:
        raise ConfigurationError(f"operating point {point.name!r} has no threshold to replay")
    return float(point.threshold)
