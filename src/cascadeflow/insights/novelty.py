"""`NoveltyScorer`: how new the recent shape of a series is, compared with the shapes it has seen.

The shape at each step is the mean of the latest value and of the blocks before it (by default the last 1,
2, 4, 8 and 16 values: the level now and over the last 31 steps). A bounded memory keeps representative
shapes; the score is the distance (largest difference of any block mean) from the current shape to the
nearest remembered one, in units of the range the series covered over the last `range_window` values. A
shape farther than `match` from every remembered one is remembered as new (the least recently matched is
forgotten when the memory is full), so a pattern is novel once, and a series whose noise fills its range
stops looking novel. With `noise_floor` k > 0 the unit is at least k times the series' own step-to-step
noise (the median absolute difference of consecutive values over the same window), so a noisy signal
whose range is mostly noise must depart further before a shape counts as new. The idea follows adaptive-resonance and contextual detectors, which lead the NAB
scoreboard: an anomaly is a pattern the stream has not produced before, not merely a large value.
"""

from __future__ import annotations

from collections import deque

import numpy as np

DEFAULT_BLOCKS = (1, 2, 4, 8, 16)
NOISE_REFRESH = 25  # values between two re-estimates of the step noise (a median over the window)


class SlidingRange:
    """Maximum minus minimum of the last `size` values, in O(1) amortised per value (monotonic queues)."""

    def __init__(self, size: int):
        self.size = size
        self.count = 0
        self.highs: deque[tuple[int, float]] = deque()
        self.lows: deque[tuple[int, float]] = deque()

    def add(self, value: float) -> None:
        self.count += 1
        while self.highs and self.highs[-1][1] <= value:
            self.highs.pop()
        self.highs.append((self.count, value))
        while self.lows and self.lows[-1][1] >= value:
            self.lows.pop()
        self.lows.append((self.count, value))
        oldest = self.count - self.size
        while self.highs[0][0] <= oldest:
            self.highs.popleft()
        while self.lows[0][0] <= oldest:
            self.lows.popleft()

    @property
    def width(self) -> float:
        return self.highs[0][1] - self.lows[0][1] if self.highs else 0.0


class NoveltyScorer:
    """Distance of the recent shape from every remembered shape, in units of the recent range (0: seen
    before; 0.25: a quarter of the range away from anything seen), or of `noise_floor` times the step
    noise when that is larger. Nothing but 0 during `warmup` values."""

    def __init__(self, *, blocks: tuple[int, ...] = DEFAULT_BLOCKS, match: float = 0.2, memory: int = 2000,
                 range_window: int = 2000, warmup: int = 150, noise_floor: float = 0.0):
        self.blocks = blocks
        self.match = match
        self.warmup = warmup
        self.span = sum(blocks)
        self.recent: deque[float] = deque(maxlen=self.span)
        self.range = SlidingRange(range_window)
        self.noise_floor = noise_floor
        self.steps: deque[float] = deque(maxlen=range_window)  # |differences| of consecutive values
        self.step_noise = 0.0
        self.shapes = np.zeros((memory, len(blocks)))
        self.last_matched = np.zeros(memory, dtype=np.int64)
        self.remembered = 0
        self.step = 0

    def shape(self) -> np.ndarray:
        newest_first = np.fromiter(reversed(self.recent), dtype=float, count=len(self.recent))
        edges = np.cumsum((0, *self.blocks))
        return np.add.reduceat(newest_first, edges[:-1]) / np.asarray(self.blocks, dtype=float)

    def score(self, value: float) -> float:
        self.step += 1
        width = self.range.width  # the range before this value, so a new extreme counts in full
        if self.noise_floor > 0:
            width = max(width, self.noise_floor * self._step_noise(value))
        self.range.add(value)
        self.recent.append(value)
        if len(self.recent) < self.span:
            return 0.0
        shape = self.shape()
        if self.remembered == 0:
            self._remember(0, shape)
            return 0.0
        gaps = np.abs(self.shapes[:self.remembered] - shape).max(axis=1)
        nearest = int(gaps.argmin())
        if width > 0:
            distance = float(gaps[nearest]) / width
        else:  # a flat series so far: any change is new
            distance = 0.0 if gaps[nearest] == 0 else 1.0
        if distance <= self.match:
            self.last_matched[nearest] = self.step
        elif self.remembered < len(self.shapes):
            self._remember(self.remembered, shape)
        else:
            self._remember(int(self.last_matched.argmin()), shape)
        return distance if self.step > self.warmup else 0.0

    def _step_noise(self, value: float) -> float:
        if self.recent:
            self.steps.append(abs(value - self.recent[-1]))
        if self.step % NOISE_REFRESH == 0 and self.steps:
            self.step_noise = float(np.median(np.fromiter(self.steps, dtype=float, count=len(self.steps))))
        return self.step_noise

    def _remember(self, slot: int, shape: np.ndarray) -> None:
        self.shapes[slot] = shape
        self.last_matched[slot] = self.step
        self.remembered = max(self.remembered, slot + 1)
