"""Arithmetic signal: the arithmetic written in a worked answer is recomputed; a wrong step vetoes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cascadeflow.cascade.validators import arithmetic
from cascadeflow.messages import Response, build_request

REQ = build_request("Show your work.")


def check(text: str):
    return arithmetic.check(REQ, Response(content=text, model="m", provider="p"))


@pytest.mark.parametrize("text", [
    "17*23 = 391", "3 + 4 = 7", "$12 x 3 = $36", "She has <<48/2=24>>24 left.", "20% of 50 = 10",
    "1,200 + 300 = 1,500", "48 ÷ 2 = 24", "7/3 = 2.33", "10/50 = 20%", "10/50*100 = 20%", "12 × 3 = 36",
    "3 * 4 = 12 + 2 = 14", "1/2 + 1/4 = 3/4", "100 - 37 = 63 apples", "(2 + 3) * 4 = 20", "0.1 + 0.2 = 0.3",
])
def test_correct_steps_pass(text):
    sig = check(text)
    assert sig is not None and sig.score == 1.0 and not sig.veto


@pytest.mark.parametrize(("text", "shown"), [
    ("17*23 = 381", "17*23=381 (is 391)"),
    ("So 3 + 4 = 8 apples.", "3 + 4=8 (is 7)"),
    ("Total: $12 x 3 = $38", "(is 36)"),
    ("He ate <<48/2=25>>25 cookies.", "48/2=25 (is 24)"),
    ("1,200 + 300 = 1,600", "(is 1500)"),
    ("20% of 50 = 15", "(is 10)"),
])
def test_a_wrong_step_vetoes_and_says_which(text, shown):
    sig = check(text)
    assert sig.veto and shown in sig.reason


def test_score_is_the_share_of_correct_steps():
    sig = check("First 2 + 2 = 4, then 4 * 3 = 12, then 12 - 5 = 8.")
    assert sig.veto and sig.score == pytest.approx(2 / 3) and sig.reason.startswith("1 of 3")


@pytest.mark.parametrize("text", [
    "No numbers here.", "Solve 2x - 3 + 4 = 5 for x.", "50 + 10% = 55", "if a + 1 == 2: pass",
    "```python\nx = 2 + 2 == 5\n```", "It costs about 3 + 4 ≈ 8", "2 + 2 = 5x",
])
def test_ambiguous_or_non_arithmetic_text_gives_no_signal(text):
    assert check(text) is None


@given(st.integers(0, 10**6), st.integers(1, 10**6), st.sampled_from(["+", "-", "*", "x", "×", "/"]),
       st.booleans())
def test_never_vetoes_a_correct_generated_step(a, b, op, thousands):
    value = {"+": a + b, "-": a - b, "*": a * b, "x": a * b, "×": a * b, "/": a / b}[op]
    fmt = (lambda n: f"{n:,}") if thousands else str
    result = f"{value:.2f}" if op == "/" else fmt(value)
    sig = check(f"We get {fmt(a)} {op} {fmt(b)} = {result}.")
    assert sig is None or not sig.veto


@given(st.integers(1, 999), st.integers(1, 999), st.integers(1, 50))
def test_always_vetoes_a_generated_sum_that_is_off(a, b, off):
    sig = check(f"Adding them: {a} + {b} = {a + b + off}.")
    assert sig is not None and sig.veto
