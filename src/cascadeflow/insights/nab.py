"""The NAB scoring rules (Lavin & Ahmad, 2015): a detector's score on labelled anomaly windows.

Each labelled window rewards its earliest detection, more the earlier it comes (a scaled sigmoid of the
position in the window), and costs `fn` when nothing is detected in it. A detection outside every window
costs up to `fp`, less when it falls just after a window. Detections in the probationary period (the first
15% of a series, at most 750 points) do not count. One threshold is chosen for the whole corpus (the one
with the best total), and the total is normalised so that no detections scores 0 and a detection at the
start of every window scores 100.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

PROBATION_PERCENT = 0.15
PROBATION_CAP_BASE = 5000  # the probationary period is at most 15% of 5,000 points


@dataclass(frozen=True, slots=True)
class CostMatrix:
    """Weights of one scoring profile: true positive, false positive, false negative."""

    tp: float
    fp: float
    fn: float


PROFILES = {
    "standard": CostMatrix(tp=1.0, fp=0.11, fn=1.0),
    "reward_low_FP_rate": CostMatrix(tp=1.0, fp=0.22, fn=1.0),
    "reward_low_FN_rate": CostMatrix(tp=1.0, fp=0.11, fn=2.0),
}


def scaled_sigmoid(position: float) -> float:
    """1 near a window's start, 0 at its end, towards -1 after it; -1 beyond 3 window lengths."""
    if position >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


def probation_length(length: int) -> int:
    return min(math.floor(PROBATION_PERCENT * length), math.floor(PROBATION_PERCENT * PROBATION_CAP_BASE))


@dataclass(slots=True, kw_only=True)
class ScoredSeries:
    """One series, ready for scoring: per counted point its detector score, its reward if detected, and
    the window it falls in (-1 outside every window)."""

    scores: np.ndarray
    rewards: np.ndarray
    window: np.ndarray
    windows: int


def prepare(scores: Sequence[float], windows: Iterable[tuple[int, int]], costs: CostMatrix) -> ScoredSeries:
    """Weigh every point of a series whose labelled windows are `windows` (inclusive index pairs)."""
    n = len(scores)
    rewards = np.empty(n)
    window_of = np.full(n, -1, dtype=np.int64)
    spans = sorted(windows)
    max_tp = scaled_sigmoid(-1.0)
    previous: tuple[int, int] | None = None  # (right index, width) of the last window passed
    k = 0
    for i in range(n):
        while k < len(spans) and spans[k][1] < i:
            previous = (spans[k][1], spans[k][1] - spans[k][0] + 1)
            k += 1
        if k < len(spans) and spans[k][0] <= i <= spans[k][1]:
            start, end = spans[k]
            width = end - start + 1
            rewards[i] = scaled_sigmoid(-(end - i + 1) / width) * costs.tp / max_tp
            window_of[i] = k
        elif previous is None:
            rewards[i] = -costs.fp
        else:
            right, width = previous
            rewards[i] = scaled_sigmoid(abs(right - i) / max(width - 1, 1)) * costs.fp
    start = probation_length(n)
    return ScoredSeries(scores=np.asarray(scores, dtype=float)[start:], rewards=rewards[start:],
                        window=window_of[start:], windows=len(spans))


def series_score(series: ScoredSeries, threshold: float, costs: CostMatrix) -> float:
    """The raw score of one series when every point scoring >= threshold is a detection."""
    hit = series.scores >= threshold
    outside = hit & (series.window < 0)
    total = float(series.rewards[outside].sum())
    detected = 0
    for k in np.unique(series.window[hit & (series.window >= 0)]):
        total += float(series.rewards[hit & (series.window == k)].max())
        detected += 1
    return total - costs.fn * (series.windows - detected)


def best_threshold(corpus: Sequence[ScoredSeries], costs: CostMatrix) -> tuple[float, float]:
    """(threshold, raw total) maximising the corpus total: a sweep from the highest score down, each
    distinct score a candidate threshold (the no-detection total is the starting point)."""
    scores = np.concatenate([s.scores for s in corpus])
    if np.isnan(scores).any():  # NaN is neither above nor below a threshold: the sweep would not end
        raise ValueError("a detector score is NaN; give every point a number (e.g. 1.0 for 'certainly anomalous')")
    rewards = np.concatenate([s.rewards for s in corpus])
    offsets = np.cumsum([0] + [s.windows for s in corpus[:-1]])
    window = np.concatenate([np.where(s.window >= 0, s.window + off, -1) for s, off in zip(corpus, offsets)])
    order = np.argsort(-scores, kind="stable")
    total_windows = sum(s.windows for s in corpus)
    best_window = np.full(total_windows, -np.inf)
    fp_sum = tp_sum = 0.0
    detected = 0
    best = (math.inf, -costs.fn * total_windows)
    i = 0
    while i < len(order):
        level = scores[order[i]]
        while i < len(order) and scores[order[i]] == level:
            j = order[i]
            if window[j] < 0:
                fp_sum += rewards[j]
            elif rewards[j] > best_window[window[j]]:
                if best_window[window[j]] == -np.inf:
                    detected += 1
                    tp_sum += rewards[j]
                else:
                    tp_sum += rewards[j] - best_window[window[j]]
                best_window[window[j]] = rewards[j]
            i += 1
        total = fp_sum + tp_sum - costs.fn * (total_windows - detected)
        if total > best[1]:
            best = (float(level), total)
    return best


def normalised(raw: float, total_windows: int, costs: CostMatrix) -> float:
    """100 for a detection at the start of every window, 0 for no detections."""
    null, perfect = -costs.fn * total_windows, costs.tp * total_windows
    return 100.0 * (raw - null) / (perfect - null)
