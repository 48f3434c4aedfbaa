"""Streaming anomaly scorers: each takes one value at a time and returns how unusual it is, in standard
deviations (0 = usual; compare with a threshold such as 3.0).

`ZScoreScorer` is the plain rolling z-score (mean and standard deviation of the last `window` values).
`RobustScorer` is a robust z-score (median and median absolute deviation, so an anomaly does not inflate
its own yardstick) of the value and of its change, then compared with the recent distribution of that raw
score itself, so that a series that is always noisy does not alert all the time. `CooldownScorer` keeps
a stream quiet for a while after it alerts. (`NoveltyScorer`, the novelty of the recent shape, is in
`novelty.py`.)
"""

from __future__ import annotations

import math
from collections import deque
from typing import Protocol

import numpy as np

MAD_TO_SIGMA = 1.4826  # the median absolute deviation of a normal distribution is 0.6745 sigma
MIN_HISTORY = 10  # values needed before a scorer says anything but 0
# The novelty (in units of the recent range) that scores like 3 standard deviations, so that the default
# threshold means "a new shape" (NoveltyScorer's `match`) for the novelty method too.
NOVELTY_AT_THREE_SD = 0.2


class StreamScorer(Protocol):
    def score(self, value: float) -> float: ...


def tail_score(z: float) -> float:
    """1 - the two-sided normal tail probability beyond |z|: 0 at the mean, towards 1 far from it."""
    return 1.0 - math.erfc(abs(z) / math.sqrt(2))


class ZScoreScorer:
    """|z| of each value against the mean and standard deviation of the previous `window` values."""

    def __init__(self, window: int = 100):
        self.values: deque[float] = deque(maxlen=window)

    def score(self, value: float) -> float:
        z = 0.0
        if len(self.values) >= MIN_HISTORY:
            mean = sum(self.values) / len(self.values)
            std = math.sqrt(sum((v - mean) ** 2 for v in self.values) / len(self.values))
            z = abs(value - mean) / std if std > 0 else (0.0 if value == mean else math.inf)
        self.values.append(value)
        return z


class RollingStats:
    """Mean and standard deviation of the last `size` values, kept as running sums."""

    def __init__(self, size: int):
        self.values: deque[float] = deque(maxlen=size)
        self.total = self.squares = 0.0

    def add(self, value: float) -> None:
        if len(self.values) == self.values.maxlen:
            old = self.values[0]
            self.total -= old
            self.squares -= old * old
        self.values.append(value)
        self.total += value
        self.squares += value * value

    def mean_std(self) -> tuple[float, float]:
        n = len(self.values)
        mean = self.total / n
        return mean, math.sqrt(max(self.squares / n - mean * mean, 0.0))


def robust_z(window: deque[float], value: float) -> float:
    """|value - median| in robust standard deviations (MAD-based; the plain one on a flat stretch)."""
    if len(window) < MIN_HISTORY:
        return 0.0
    data = np.fromiter(window, dtype=float, count=len(window))
    median = float(np.median(data))
    spread = MAD_TO_SIGMA * float(np.median(np.abs(data - median)))
    if spread == 0.0:
        spread = float(data.std()) or (abs(median) * 1e-3 or 1e-9)
    return abs(value - median) / spread


class RobustScorer:
    """Robust z of the level and of the change, as standard deviations above that raw score's usual level.

    The raw score is log(1 + the larger robust |z|); its mean over the last `short` values is compared with
    its mean and spread over the last `long` values.
    """

    def __init__(self, window: int = 400, *, short: int = 3, long: int = 2000):
        self.values: deque[float] = deque(maxlen=window)
        self.changes: deque[float] = deque(maxlen=window)
        self.previous: float | None = None
        self.recent: deque[float] = deque(maxlen=short)
        self.history = RollingStats(long)

    def raw(self, value: float) -> float:
        level = robust_z(self.values, value)
        change = 0.0
        if self.previous is not None:
            delta = value - self.previous
            change = robust_z(self.changes, delta)
            self.changes.append(delta)
        self.previous = value
        self.values.append(value)
        return math.log1p(max(level, change))

    def score(self, value: float) -> float:
        raw = self.raw(value)
        self.recent.append(raw)
        z = 0.0
        if len(self.history.values) >= 2 * MIN_HISTORY:
            mean, std = self.history.mean_std()
            z = max((sum(self.recent) / len(self.recent) - mean) / (std or 1e-6), 0.0)
        self.history.add(raw)
        return z


class CooldownScorer:
    """Another scorer's score, but 0 for the `cooldown` values after one that reached `threshold`: one
    alert per incident rather than one per value, and at most one false alert per cool-down."""

    def __init__(self, scorer: StreamScorer, *, threshold: float, cooldown: int):
        self.scorer = scorer
        self.threshold = threshold
        self.cooldown = cooldown
        self.quiet = 0

    def score(self, value: float) -> float:
        score = self.scorer.score(value)  # scored even when quiet, so the history stays complete
        if self.quiet > 0:
            self.quiet -= 1
            return 0.0
        if score >= self.threshold:
            self.quiet = self.cooldown
        return score
