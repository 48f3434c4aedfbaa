"""Signals on worked numeric answers: answer form, answer consistency, quantity coverage (and the shared parser)."""

from __future__ import annotations

import pytest

from cascadeflow.cascade.validators import answer_consistency, answer_form, quantity_coverage, worked_answer
from cascadeflow.messages import Response, build_request

QUESTION = "James runs 3 sprints 3 times a week. He runs 60 meters each sprint. How many meters does he run a week?"
REQ = build_request(QUESTION)


def resp(text: str) -> Response:
    return Response(content=text, model="m", provider="p")


GOOD = "Per session he runs 3 x 60 = 180 meters. In a week: 180 x 3 = 540 meters.\n#### 540"


@pytest.mark.parametrize(("text", "final"), [
    (GOOD, 540.0),
    ('{"reasoning": "3 * 60 = 180, 180 * 3 = 540", "answer": "540"}', 540.0),
    ("3 * 60 = 180 and 180 * 3 = 540. The final answer is: $\\boxed{540}$", 540.0),
    ("3 * 60 = 180; 180 * 3 = 540. The answer is $1,540.", 1540.0),
    ("3 * 60 = 180 and 180 * 3 = 540", None),
])
def test_final_answer_is_read_from_each_marker(text, final):
    assert worked_answer.read(REQ, text).final == final


def test_numbers_in_code_of_the_question_are_not_quantities():
    req = build_request('Tom has 5 apples and eats 2. Answer in JSON like `"answer": "42"`.\n```json\n{"a": 7}\n```')
    assert worked_answer.read(req, "5 - 2 = 3\n#### 3").question_numbers == (5.0, 2.0)


def test_minus_between_numbers_is_not_a_negative_number():
    assert worked_answer.numbers("16 - 7 = 9 and 16-7 = 9, then = -2") == [16.0, 7.0, 9.0, 16.0, 7.0, 9.0, -2.0]


def test_answer_form_scores_a_marked_whole_answer_fully():
    sig = answer_form.check(REQ, resp(GOOD))
    assert sig is not None and sig.score == 1.0 and not sig.veto


@pytest.mark.parametrize(("text", "score"), [
    ("3 x 60 = 180, 180 x 3 = 540 meters in all.", 0.3),  # no final answer marked
    ("3 x 60 = 180, 180 / 7 = 25.7\n#### 25.7", 0.2),  # fraction of whole quantities
    ("60 - 180 = -120\n#### -120", 0.3),  # negative with no negative given
])
def test_answer_form_lowers_implausible_forms(text, score):
    sig = answer_form.check(REQ, resp(text))
    assert sig is not None and sig.score == score and not sig.veto


def test_answer_form_allows_fractions_when_the_question_has_money():
    req = build_request("A pen costs $1.50 and a pad $2. What do 3 pens and a pad cost?")
    sig = answer_form.check(req, resp("3 * 1.50 = 4.50; 4.50 + 2 = 6.50\n#### 6.50"))
    assert sig is not None and sig.score == 0.7


@pytest.mark.parametrize("text", ["Paris is the capital of France.", ""])
def test_answer_form_is_absent_without_worked_numbers(text):
    assert answer_form.check(REQ, resp(text)) is None


def test_answer_form_is_absent_for_a_question_without_numbers():
    assert answer_form.check(build_request("What is the capital of France?"), resp("2 + 2 = 4\n#### 4")) is None


@pytest.mark.parametrize(("text", "score"), [
    (GOOD, 1.0),
    ("3 x 60 = 180 meters, 180 x 3 = 540 meters.\n#### 180", 0.6),
    ("3 x 60 = 180 meters, 180 x 3 = 540 meters.\n#### 720", 0.2),
])
def test_answer_consistency_compares_final_with_the_working(text, score):
    sig = answer_consistency.check(REQ, resp(text))
    assert sig is not None and sig.score == score
    assert "720" in sig.reason if score == 0.2 else True


def test_answer_consistency_is_absent_without_computed_values():
    assert answer_consistency.check(REQ, resp("It is 540.\n#### 540")) is None
    assert answer_consistency.check(REQ, resp("3 x 60 = 180 and 180 x 3 = 540")) is None


def test_quantity_coverage_is_the_share_of_given_numbers_used():
    full = quantity_coverage.check(REQ, resp(GOOD))
    assert full is not None and full.score == 1.0
    partial = quantity_coverage.check(REQ, resp("He runs 60 x 9 = 540 meters.\n#### 540"))
    assert partial is not None and partial.score == 0.5 and "unused: 3" in partial.reason


def test_quantity_coverage_needs_two_given_numbers_and_a_worked_answer():
    assert quantity_coverage.check(build_request("What is 7 squared?"), resp("7 * 7 = 49\n#### 49")) is None
    assert quantity_coverage.check(REQ, resp("He runs a lot of meters every week.")) is None
