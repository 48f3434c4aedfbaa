"""`AgreementScorer`: an anomaly is a value that is both far from usual and a shape the stream has not
produced before.

The robust z-score (`RobustScorer`) alerts on any large departure, including a new shape that is perfectly
regular; the novelty of the recent shape (`NoveltyScorer`) alerts on any new shape, including one that a
noisy signal produces by chance. Their weighted geometric mean is high only when both are: one of them at
zero silences the other. Novelty here has a noise floor (a departure of at least `noise_floor` times the
signal's own step-to-step noise), so a signal that is mostly noise needs a larger change to look new.
"""

from __future__ import annotations

from cascadeflow.insights.novelty import NoveltyScorer
from cascadeflow.insights.scorers import NOVELTY_AT_THREE_SD, RobustScorer

# Chosen by measurement (benchmarks/anomaly_nab.py on NAB's half 0 only, benchmarks/anomaly_cost_series.py
# on seeds 1000-1011), fixed for every series: see docs/benchmarks.md.
ROBUST_WEIGHT = 0.4
NOISE_FLOOR = 10.0


class AgreementScorer:
    """robust^w x novelty^(1-w), both in standard deviations (novelty scaled so that `match` scores 3.0)."""

    def __init__(self, *, window: int = 400, robust_weight: float = ROBUST_WEIGHT, noise_floor: float = NOISE_FLOOR):
        self.robust = RobustScorer(window=window)
        self.novelty = NoveltyScorer(noise_floor=noise_floor)
        self.robust_weight = robust_weight

    def score(self, value: float) -> float:
        robust = self.robust.score(value)
        novelty = self.novelty.score(value) * 3.0 / NOVELTY_AT_THREE_SD
        return robust ** self.robust_weight * novelty ** (1.0 - self.robust_weight)
