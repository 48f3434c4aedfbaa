"""Threshold tuning for an agent on recorded data: chosen on calibration queries, measured on held-out ones.

The choice and the measurement are `cross_validate`'s (the code behind the replay benchmarks): per fold,
sweep the real engine on the training part, take the cheapest threshold that reaches the target share of
strong-only quality, and run the engine at that threshold on the held-out part.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from os import PathLike
from typing import TYPE_CHECKING, Any

from cascadeflow.cascade.quality import QualityConfig
from cascadeflow.errors import ConfigurationError
from cascadeflow.replay.engine import Progress, ReplaySetup, with_calibration
from cascadeflow.replay.engine import fit_calibration as fit_draft_calibration
from cascadeflow.replay.format import ReplayDataset, coerce_dataset
from cascadeflow.replay.report import OperatingPoint, check_confidence, choose_threshold, reference
from cascadeflow.replay.study import cross_validate, sweep_points
from cascadeflow.sync import run_sync

if TYPE_CHECKING:
    from cascadeflow.cascade.agent import CascadeAgent

log = logging.getLogger(__name__)

Data = ReplayDataset | str | PathLike[str]


@dataclass(slots=True)
class ThresholdTuning:
    """The threshold to deploy and what it did on queries it was not chosen on.

    With `calibrate_on`, `threshold` is chosen there and `evaluated` is its run on the dataset. Without it,
    `threshold` is chosen on the whole dataset and `evaluated` is the k-fold estimate of that procedure
    (each fold's threshold chosen on its training part and run on its held-out part, pooled)."""

    threshold: float
    target_quality: float  # share of strong-only quality
    target_reached: bool  # on the calibration data; False: the highest-quality threshold was taken instead
    chosen: OperatingPoint  # the chosen threshold's point on the data it was chosen on
    evaluated: OperatingPoint  # measured on held-out queries
    baselines: list[OperatingPoint]  # cheap-only, strong-only, oracle on the held-out queries
    random_at_same_fraction: OperatingPoint
    quality_config: QualityConfig  # the agent's config at this threshold (with the fitted calibration, if any)
    folds: list[dict[str, Any]] = field(default_factory=list)
    confidence: float | None = None  # the paired rule's one-sided level; None: chosen for the target as measured

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "target_quality_fraction": self.target_quality,
                "confidence": self.confidence,
                "target_reached_on_calibration": self.target_reached, "chosen": self.chosen.to_dict(),
                "evaluated": self.evaluated.to_dict(), "baselines": [b.to_dict() for b in self.baselines],
                "random_at_same_fraction": self.random_at_same_fraction.to_dict(), "folds": self.folds}


async def tune_threshold(agent: CascadeAgent, dataset: Data, *, target_quality: float = 0.95,
                         calibrate_on: Data | None = None, folds: int = 2, seed: int = 0,
                         fit_calibration: bool = False, confidence: float | None = None,
                         progress: Progress | None = None) -> ThresholdTuning:
    """Choose the agent's acceptance threshold for `target_quality` (a share of strong-only quality) on
    calibration data and measure it on held-out data, running the agent's cascade through the replay engine.

    `calibrate_on` is separate calibration data (no query id may also be in `dataset`); without it the
    dataset is split into `folds` fixed random folds (`seed`). `fit_calibration=True` also fits the draft
    tier's validator calibration on each calibration part (thresholds are then probabilities).
    `confidence` (e.g. 0.95) chooses by the one-sided lower confidence bound of a threshold's quality on the
    calibration data rather than its measured quality, so the target holds on new data more often than
    half the time, at some extra cost (see docs/replay.md)."""
    if isinstance(target_quality, bool) or not isinstance(target_quality, (int, float)) \
            or not 0 < target_quality <= 1.5:
        raise ConfigurationError(f"target_quality is a share of strong-only quality (e.g. 0.95), got "
                                 f"{target_quality!r}")
    check_confidence(confidence)
    data = coerce_dataset(dataset)
    setup = ReplaySetup.for_agent(agent, data)
    if setup.quality.thresholds_by_complexity:
        raise ConfigurationError("tune_threshold tunes one threshold; the agent's quality_config uses "
                                 "thresholds_by_complexity")
    if calibrate_on is not None:
        calibration = coerce_dataset(calibrate_on)
        overlap = {q.id for q in calibration.queries} & {q.id for q in data.queries}
        if overlap:
            raise ConfigurationError(f"{len(overlap)} queries (e.g. {min(overlap)!r}) are in both "
                                     f"calibrate_on and the dataset; calibrate on queries you do not measure on")
        pairs = [(calibration, data)]
    else:
        calibration = data
        pairs = data.folds(folds, seed)
    result = await cross_validate(pairs, setup.models, setup.quality, target_quality=target_quality,
                                  fit=fit_calibration, confidence=confidence, progress=progress,
                                  price_book=setup.price_book)
    final = ReplaySetup.build(calibration, setup.models, setup.quality, price_book=setup.price_book)
    if fit_calibration:
        final = with_calibration(final, await fit_draft_calibration(final))
    if calibrate_on is not None:
        fold = result["folds"][0]
        chosen, reached = OperatingPoint(**fold["chosen_on_calibration"]), fold["target_reached_on_calibration"]
        evaluated = OperatingPoint(**fold["evaluated"])  # the pooled point of one fold, with its threshold
    else:
        chosen, reached = await _choose(final, target_quality, confidence, progress)
        evaluated = OperatingPoint(**result["pooled"])
    threshold = float(chosen.threshold)  # type: ignore[arg-type]
    log.info("threshold %.4f chosen on %s (target %s reached: %s)", threshold, calibration.name,
             target_quality, reached)
    return ThresholdTuning(
        threshold=threshold, target_quality=target_quality, target_reached=reached, chosen=chosen,
        evaluated=evaluated,
        baselines=[OperatingPoint(**b) for b in result["baselines"]],
        random_at_same_fraction=OperatingPoint(**result["random_at_same_fraction"]),
        quality_config=final.quality.with_(threshold=threshold), folds=result["folds"], confidence=confidence)


async def _choose(setup: ReplaySetup, target: float, confidence: float | None,
                  progress: Progress | None) -> tuple[OperatingPoint, bool]:
    """The cheapest threshold reaching the target on `setup`'s data, or (as cross_validate does when none
    does) the highest-quality one."""
    ref = reference(setup.dataset, setup.models[0], setup.models[-1], setup.price_book)
    points, _ = await sweep_points(setup, ref, progress=progress)
    chosen = choose_threshold(points, target, confidence)
    if chosen is not None:
        return chosen, True
    return max(points, key=lambda p: (p.quality, -p.cost_usd)), False


def tune_threshold_sync(agent: CascadeAgent, dataset: Data, **options: Any) -> ThresholdTuning:
    """The synchronous twin of `tune_threshold` (refused inside a running event loop)."""
    return run_sync(tune_threshold(agent, dataset, **options), what="tune_threshold_sync")
