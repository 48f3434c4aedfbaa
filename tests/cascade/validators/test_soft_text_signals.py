"""Soft text signals: self-correction markers and answer length relative to the question."""

from __future__ import annotations

import pytest

from cascadeflow.cascade.validators import answer_length, self_correction
from cascadeflow.messages import Response, build_request

REQ = build_request("How many apples does Tom have left after giving away 3 of his 10 apples?")
PLAIN = ("Tom starts with 10 apples. He gives away 3 of them to his friends at school. To find how many are "
         "left we subtract the apples he gave away from the apples he had: 10 - 3 = 7. Tom has 7 apples left.")


def resp(text: str) -> Response:
    return Response(content=text, model="m", provider="p")


def test_plain_reasoning_scores_fully():
    sig = self_correction.check(REQ, resp(PLAIN))
    assert sig is not None and sig.score == 1.0 and not sig.veto


@pytest.mark.parametrize(("marker", "quoted"), [
    ("Wait,", "Wait"), ("Actually", "Actually"), ("I made a mistake:", "made a mistake"),
    ("Let me recompute.", "Let me recompute"), ("That is approximately", "approximately"),
])
def test_revision_or_estimate_lowers_the_score_and_is_quoted(marker, quoted):
    sig = self_correction.check(REQ, resp(f"{PLAIN} {marker} the result holds."))
    assert sig is not None and sig.score == 0.4 and repr(quoted) in sig.reason


def test_short_answers_have_no_self_correction_signal():
    assert self_correction.check(REQ, resp("Actually, 7.")) is None


def test_length_score_falls_as_the_answer_grows():
    short = answer_length.check(REQ, resp("7"))
    long = answer_length.check(REQ, resp(PLAIN * 3))
    assert short is not None and long is not None and 0 < long.score < short.score < 1
    assert "x the question's length" in long.reason


def test_length_is_absent_without_text():
    assert answer_length.check(REQ, resp("   ")) is None
    assert answer_length.check(build_request([{"role": "system", "content": "Be brief."}]), resp("7")) is None
