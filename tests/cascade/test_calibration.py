"""Calibration: fit a monotone map from signals to P(correct), save/load it, split train from eval."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cascadeflow.cascade.calibration import Calibration, brier_score, in_eval_split, split_rows
from cascadeflow.cascade.quality import Signal
from cascadeflow.errors import ConfigurationError


def synthetic(n: int, stream: int) -> list[tuple[list[Signal], bool]]:
    """Drafts whose true P(correct) equals their logprob score; relevance is noise; half lack logprobs."""
    rng = random.Random(stream)
    rows = []
    for _ in range(n):
        p = rng.random()
        signals = [Signal("structure", 1.0, "ok"), Signal("relevance", rng.random(), "noise")]
        if rng.random() < 0.5:
            signals.append(Signal("logprob", p, "lp"))
            correct = rng.random() < p
        else:
            correct = rng.random() < 0.3  # without logprobs these drafts are usually wrong
        rows.append((signals, correct))
    return rows


def test_learns_a_monotone_mapping_on_synthetic_data():
    cal = Calibration.fit(synthetic(2000, stream=1))
    probs = [cal.predict({"structure": 1.0, "relevance": 0.5, "logprob": x / 10}) for x in range(11)]
    assert probs == sorted(probs) and probs[-1] - probs[0] > 0.5
    assert cal.weights["logprob"][0] > 0


def test_missing_signal_is_its_own_evidence():
    cal = Calibration.fit(synthetic(2000, stream=2))
    without = cal.predict({"structure": 1.0, "relevance": 0.5})
    assert without == pytest.approx(0.3, abs=0.07)


def test_predictions_are_calibrated_on_held_out_data():
    cal = Calibration.fit(synthetic(3000, stream=3))
    held_out = synthetic(2000, stream=4)
    constant = sum(ok for _, ok in held_out) / len(held_out)
    baseline = sum((constant - ok) ** 2 for _, ok in held_out) / len(held_out)
    assert brier_score(cal, held_out) < baseline - 0.02


def test_save_load_round_trip(tmp_path):
    cal = Calibration.fit(synthetic(500, stream=5), meta={"source": "unit test"})
    path = cal.save(tmp_path / "calibration.json")
    data = json.loads(path.read_text())
    assert data["format"] == "cascadeflow-calibration" and data["n_train"] == 500
    loaded = Calibration.load(path)
    assert loaded == cal
    sample = {"structure": 1.0, "logprob": 0.7}
    assert loaded.predict(sample) == cal.predict(sample)


def test_accepts_verdict_like_objects_and_signal_sequences():
    cal = Calibration(weights={"logprob": (2.0, 0.0)}, intercept=-1.0)

    class VerdictLike:
        signals = (Signal("logprob", 0.5, "x"),)

    assert cal.predict(VerdictLike()) == cal.predict([Signal("logprob", 0.5, "x")]) == pytest.approx(0.5)


def test_unseen_signals_are_ignored_at_prediction():
    cal = Calibration(weights={"logprob": (2.0, 0.0)}, intercept=-1.0)
    assert cal.predict({"logprob": 0.5, "brand_new": 0.0}) == cal.predict({"logprob": 0.5})


@pytest.mark.parametrize("rows", [[], [({"logprob": 0.5}, True)] * 5])
def test_fit_needs_both_outcomes(rows):
    with pytest.raises(ConfigurationError, match="both correct and incorrect"):
        Calibration.fit(rows)


def test_load_rejects_missing_malformed_and_foreign_files(tmp_path):
    with pytest.raises(ConfigurationError, match="not found"):
        Calibration.load(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(ConfigurationError, match="not JSON"):
        Calibration.load(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ConfigurationError, match="cascadeflow-calibration"):
        Calibration.load(tmp_path / "other.json")
    (tmp_path / "broken.json").write_text(json.dumps({"format": "cascadeflow-calibration", "version": 1}))
    with pytest.raises(ConfigurationError, match="malformed"):
        Calibration.load(tmp_path / "broken.json")


def test_split_is_deterministic_disjoint_and_near_the_fraction():
    ids = [f"q{i}" for i in range(2000)]
    train, held_out = split_rows(ids, key=str, eval_fraction=0.25)
    again_train, again_eval = split_rows(list(reversed(ids)), key=str, eval_fraction=0.25)
    assert set(train) == set(again_train) and set(held_out) == set(again_eval)
    assert not set(train) & set(held_out) and len(train) + len(held_out) == 2000
    assert 0.2 < len(held_out) / 2000 < 0.3
    assert set(split_rows(ids, key=str, eval_fraction=0.25, salt="other")[1]) != set(held_out)


def test_split_rejects_a_bad_fraction():
    with pytest.raises(ConfigurationError):
        split_rows([1, 2], key=str, eval_fraction=1.0)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=4, max_size=60))
def test_predictions_are_probabilities_and_monotone_in_the_fitted_direction(rows):
    assume(len({ok for _, ok in rows}) == 2)
    cal = Calibration.fit([({"logprob": x}, ok) for x, ok in rows])
    preds = [cal.predict({"logprob": x / 4}) for x in range(5)]
    assert all(0.0 <= p <= 1.0 for p in preds)
    assert preds == sorted(preds) or preds == sorted(preds, reverse=True)


def test_eval_membership_is_stable_per_key():
    assert in_eval_split("query-17") == in_eval_split("query-17")


def test_soft_signals_are_off_by_default_and_on_with_a_calibration_fitted_on_them():
    from cascadeflow.cascade.quality import DEFAULT_SIGNALS, SOFT_SIGNALS, QualityConfig, assess
    from cascadeflow.messages import Response, build_request

    req = build_request("Tom has 10 apples and gives away 3. How many apples are left?")
    right = Response(content="He has 10 - 3 = 7 apples left.\n#### 7", model="m", provider="p")
    slipped = Response(content="He has 10 - 3 = 7 apples left.\n#### 13", model="m", provider="p")
    assert set(SOFT_SIGNALS).isdisjoint(QualityConfig().signals) and QualityConfig().signals == DEFAULT_SIGNALS
    assert "answer_consistency" not in assess(req, slipped, QualityConfig()).used
    rows = [({"answer_consistency": 1.0}, True)] * 8 + [({"answer_consistency": 1.0}, False)] * 2 \
        + [({"answer_consistency": 0.2}, False)] * 8 + [({"answer_consistency": 0.2}, True)] * 2
    config = QualityConfig(threshold=0.5, calibration=Calibration.fit(rows))
    good, bad = assess(req, right, config), assess(req, slipped, config)
    assert "answer_consistency" in good.used and good.accepted
    assert not bad.accepted and bad.score < 0.5 and "answer_consistency" in bad.reason


def test_quadratic_fit_learns_that_both_extremes_are_worse(tmp_path):
    # right answers sit in the middle of the score range, wrong ones at both ends: no straight weight fits
    rows = [({"answer_length": s}, True) for s in (0.45, 0.5, 0.55, 0.6) * 10] \
        + [({"answer_length": s}, False) for s in (0.05, 0.1, 0.9, 0.95) * 10]
    linear, quadratic = Calibration.fit(rows, l2=0.01), Calibration.fit(rows, l2=0.01, quadratic=True)
    assert abs(linear.predict({"answer_length": 0.5}) - linear.predict({"answer_length": 0.95})) < 0.1
    assert quadratic.predict({"answer_length": 0.5}) > 0.8
    assert quadratic.predict({"answer_length": 0.05}) < 0.2 and quadratic.predict({"answer_length": 0.95}) < 0.2
    loaded = Calibration.load(quadratic.save(tmp_path / "cal.json"))
    assert loaded.squares == quadratic.squares
    assert loaded.predict({"answer_length": 0.95}) == quadratic.predict({"answer_length": 0.95})
    assert "square" not in json.loads(linear.save(tmp_path / "lin.json").read_text())["weights"]["answer_length"]
    assert Calibration.load(tmp_path / "lin.json").squares == {}
