"""AgreementScorer: high only when the robust z-score and the novelty of the shape are both high; the
novelty's noise floor makes a noisy signal need a larger change to look new."""

import numpy as np

from cascadeflow.insights import AgreementScorer, AnomalyDetector
from cascadeflow.insights.novelty import NoveltyScorer
from cascadeflow.insights.scorers import RobustScorer


def test_the_noise_floor_scales_a_departure_by_the_step_noise_but_keeps_a_large_jump():
    plain, floored = NoveltyScorer(warmup=0), NoveltyScorer(warmup=0, noise_floor=10.0)
    for i in range(500):  # 0, 1, 0, 1...: range 1, every step 1, so the floor is 10 ranges
        plain.score(float(i % 2))
        floored.score(float(i % 2))
    # half a step past the range: new in units of the range, within the noise in units of ten steps
    assert floored.score(1.5) <= floored.match < plain.score(1.5)
    assert floored.score(20.0) > floored.match


def test_a_large_value_in_the_novelty_warmup_is_not_an_agreed_anomaly():
    rng = np.random.default_rng(8)
    agreement, robust = AgreementScorer(), RobustScorer()
    for value in rng.normal(10.0, 1.0, 100):
        agreement.score(float(value))
        robust.score(float(value))
    # robust alone alerts; the novelty memory is still warming up (0), so the product is 0
    assert max(robust.score(60.0) for _ in range(3)) >= 3.0
    assert max(agreement.score(60.0) for _ in range(3)) == 0.0


def test_a_new_level_after_noise_is_an_agreed_anomaly():
    rng = np.random.default_rng(9)
    scorer = AgreementScorer()
    calm = [scorer.score(float(v)) for v in rng.normal(10.0, 1.0, 800)]
    assert max(calm[300:]) < 3.0
    assert max(scorer.score(float(v)) for v in rng.normal(40.0, 1.0, 5)) >= 3.0


def test_agreement_is_the_detectors_default():
    detector = AnomalyDetector()
    rng = np.random.default_rng(10)
    for value in rng.normal(10.0, 1.0, 600):
        detector.observe("latency", float(value))
    found = [a for a in (detector.observe("latency", 60.0) for _ in range(3)) if a is not None]
    assert detector.method == "agreement" and found and found[0].method == "agreement"
