"""NoveltyScorer: a shape the stream has produced before scores 0, a new one scores its distance in units
of the recent range; CooldownScorer keeps a stream quiet after an alert."""

import math

import numpy as np
import pytest

from cascadeflow.insights.anomaly import AnomalyDetector
from cascadeflow.insights.novelty import NoveltyScorer, SlidingRange
from cascadeflow.insights.scorers import CooldownScorer


def daily_wave(n, period=48):
    return [10.0 + 5.0 * math.sin(2 * math.pi * i / period) for i in range(n)]


def test_the_sliding_range_forgets_values_older_than_its_window():
    window = SlidingRange(3)
    for value in (5.0, 1.0, 2.0, 3.0):
        window.add(value)
    assert window.width == 2.0  # 1, 2, 3: the 5 has left
    window.add(9.0)
    assert window.width == 7.0


def test_a_repeating_pattern_stops_being_novel_and_a_new_one_is():
    scorer = NoveltyScorer(warmup=0)
    scores = [scorer.score(v) for v in daily_wave(600)]
    assert max(scores[300:]) == 0.0 or max(scores[300:]) <= scorer.match
    flat = [scorer.score(17.0) for _ in range(20)]  # a level above anything seen: novel at once
    assert flat[0] > 0.2


def test_a_spike_scores_its_size_in_units_of_the_recent_range():
    scorer = NoveltyScorer(warmup=0)
    rng = np.random.default_rng(4)
    for value in rng.uniform(0.0, 1.0, 1000):
        scorer.score(float(value))
    assert scorer.score(3.0) == pytest.approx(2.0, abs=0.2)  # the mean of the newest block is 3: ~2 ranges out


def test_noise_that_fills_its_range_is_rarely_novel():
    scorer = NoveltyScorer()
    rng = np.random.default_rng(5)
    scores = np.array([scorer.score(float(v)) for v in rng.normal(100.0, 5.0, 4000)])
    assert (scores[2000:] > scorer.match).mean() < 0.01


def test_memory_is_bounded():
    scorer = NoveltyScorer(memory=50, match=0.02, warmup=0)
    rng = np.random.default_rng(6)
    for value in rng.uniform(0.0, 1.0, 2000):  # far more distinct shapes than the memory holds
        scorer.score(float(value))
    assert scorer.remembered == 50 and scorer.shapes.shape == (50, 5)


def test_nothing_is_novel_during_the_warmup():
    scorer = NoveltyScorer(warmup=100)
    assert [scorer.score(float(i % 7) * 100) for i in range(100)] == [0.0] * 100


def test_the_cooldown_silences_a_stream_after_it_alerts():
    class Fixed:
        def __init__(self, scores):
            self.scores = iter(scores)

        def score(self, value):
            return next(self.scores)

    cooled = CooldownScorer(Fixed([1, 5, 5, 5, 1, 5, 5]), threshold=3.0, cooldown=2)
    assert [cooled.score(0.0) for _ in range(7)] == [1, 5, 0.0, 0.0, 1, 5, 0.0]


def test_the_novelty_method_reports_a_new_level_once():
    detector = AnomalyDetector(method="novelty")
    for value in daily_wave(600):
        assert detector.observe("latency", value) is None
    reports = [detector.observe("latency", 25.0) for _ in range(50)]
    found = [r for r in reports if r is not None]
    assert len(found) == 1 and found[0].method == "novelty" and found[0].score >= 3.0
