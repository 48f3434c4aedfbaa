"""The NAB scoring rules on hand-made series whose scores follow from the rules directly."""

import math

import pytest

from cascadeflow.insights import nab

STD = nab.PROFILES["standard"]
N = 1000  # probation: the first 150 points


def scored(scores, windows, costs=STD):
    return nab.prepare(scores, windows, costs)


def test_scaled_sigmoid_shape():
    assert nab.scaled_sigmoid(-1.0) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert nab.scaled_sigmoid(0.0) == 0.0
    assert nab.scaled_sigmoid(3.5) == -1.0


def test_probation_is_fifteen_percent_capped_at_750():
    assert nab.probation_length(1000) == 150
    assert nab.probation_length(20_000) == 750


def test_a_detection_at_a_windows_start_earns_the_full_true_positive_weight():
    scores = [0.0] * N
    scores[400] = 1.0
    series = scored(scores, [(400, 499)])
    assert nab.series_score(series, 0.5, STD) == pytest.approx(1.0)


def test_later_detections_earn_less_and_only_the_best_one_counts():
    early, late = [0.0] * N, [0.0] * N
    early[420] = late[480] = 1.0
    both = list(early)
    both[480] = 1.0
    windows = [(400, 499)]
    e, la = (nab.series_score(scored(s, windows), 0.5, STD) for s in (early, late))
    assert 0 < la < e < 1.0
    assert nab.series_score(scored(both, windows), 0.5, STD) == pytest.approx(e)


def test_a_missed_window_costs_the_false_negative_weight_and_a_false_positive_its_weight():
    scores = [0.0] * N
    scores[200] = 1.0  # before any window: the full false-positive cost
    series = scored(scores, [(400, 499)])
    assert nab.series_score(series, 0.5, STD) == pytest.approx(-1.0 - 0.11)


def test_a_detection_just_after_a_window_costs_less_than_one_far_away():
    near, far = [0.0] * N, [0.0] * N
    near[505] = far[900] = 1.0
    windows = [(400, 499)]
    assert nab.series_score(scored(near, windows), 0.5, STD) > nab.series_score(scored(far, windows), 0.5, STD)
    assert nab.series_score(scored(far, windows), 0.5, STD) == pytest.approx(-1.0 - 0.11)


def test_detections_in_the_probationary_period_do_not_count():
    scores = [0.0] * N
    scores[100] = 1.0
    assert nab.series_score(scored(scores, [(400, 499)]), 0.5, STD) == pytest.approx(-1.0)


def test_the_threshold_sweep_finds_the_best_total_and_matches_direct_scoring():
    scores = [0.1] * N
    scores[410], scores[700], scores[905] = 0.9, 0.6, 0.8
    corpus = [scored(scores, [(400, 499), (900, 950)])]
    threshold, raw = nab.best_threshold(corpus, STD)
    assert raw == pytest.approx(nab.series_score(corpus[0], threshold, STD))
    for other in (0.05, 0.5, 0.7, 0.95):
        assert raw >= nab.series_score(corpus[0], other, STD) - 1e-12


def test_normalisation_puts_no_detections_at_0_and_perfect_at_100():
    assert nab.normalised(-4.0, 4, STD) == 0.0
    assert nab.normalised(4.0, 4, STD) == 100.0


def test_the_sigmoid_is_minus_one_from_three_window_lengths_on():
    assert nab.scaled_sigmoid(3.0) == -1.0  # as NAB's sweeper: a false positive far after a window costs in full


def test_a_nan_score_is_refused_rather_than_swept_forever():
    series = scored([0.0] * 499 + [math.nan] + [0.0] * 500, [(600, 650)])
    with pytest.raises(ValueError, match="NaN"):
        nab.best_threshold([series], STD)
