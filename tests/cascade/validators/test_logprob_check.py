"""Logprob signal: geometric-mean token probability when logprobs exist, reported confidence otherwise, else absent."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cascadeflow.cascade.validators import logprob
from cascadeflow.messages import Response, TokenLogprob, build_request

REQ = build_request("What is 2+2?")


def resp(lps=None, confidence=None) -> Response:
    tokens = None if lps is None else tuple(TokenLogprob(f"t{i}", lp) for i, lp in enumerate(lps))
    return Response(content="4", model="m", provider="p", logprobs=tokens, confidence=confidence)


def test_absent_when_no_logprobs_and_no_confidence():
    assert logprob.check(REQ, resp()) is None


def test_absent_when_logprobs_are_an_empty_list():
    assert logprob.check(REQ, resp([])) is None


def test_geometric_mean_probability():
    sig = logprob.check(REQ, resp([math.log(0.9), math.log(0.4)]))
    assert sig.score == pytest.approx(math.sqrt(0.9 * 0.4))
    assert "lowest 0.40" in sig.reason


def test_minus_infinity_is_clamped_not_fatal():
    sig = logprob.check(REQ, resp([0.0] * 99 + [float("-inf")]))
    assert sig.score == pytest.approx(math.exp(logprob.LOGPROB_FLOOR / 100))


def test_nan_entries_are_skipped():
    sig = logprob.check(REQ, resp([math.log(0.5), float("nan")]))
    assert sig.score == pytest.approx(0.5)


def test_reported_confidence_is_used_when_no_logprobs():
    sig = logprob.check(REQ, resp(confidence=0.42))
    assert sig.score == pytest.approx(0.42) and "reported" in sig.reason


def test_logprobs_take_precedence_over_reported_confidence():
    assert logprob.check(REQ, resp([math.log(0.8)], confidence=0.1)).score == pytest.approx(0.8)


def test_out_of_range_confidence_gives_no_signal():
    assert logprob.check(REQ, resp(confidence=3.5)) is None


@given(st.lists(st.floats(max_value=0.0, allow_nan=False), min_size=1, max_size=50))
def test_score_is_a_probability_and_falls_as_a_token_gets_less_likely(lps):
    sig = logprob.check(REQ, resp(lps))
    assert 0.0 <= sig.score <= 1.0
    lower = logprob.check(REQ, resp([*lps[:-1], lps[-1] - 1.0]))
    assert lower.score <= sig.score
