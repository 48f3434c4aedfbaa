"""Structure signal: hard failures veto, hedging lowers the score, clean answers pass."""

from __future__ import annotations

import pytest

from cascadeflow.cascade.validators import structure
from cascadeflow.messages import Response, ToolCall, build_request

REQ = build_request("Explain how TCP congestion control reacts to packet loss.")


def resp(text: str, **kw) -> Response:
    return Response(content=text, model="m", provider="p", **kw)


@pytest.mark.parametrize("text", ["", "   \n"])
def test_empty_answer_vetoes(text):
    sig = structure.check(REQ, resp(text))
    assert sig.veto and "empty" in sig.reason


def test_tool_call_only_answer_is_not_empty():
    sig = structure.check(REQ, resp("", tool_calls=(ToolCall("1", "f", "{}"),), finish_reason="tool_calls"))
    assert not sig.veto and sig.score == 1.0


def test_cut_off_at_max_tokens_vetoes_even_when_text_looks_fine():
    sig = structure.check(REQ, resp("TCP halves its congestion window when", finish_reason="length"))
    assert sig.veto and "length" in sig.reason


def test_content_filter_finish_vetoes():
    assert structure.check(REQ, resp("partial", finish_reason="content_filter")).veto


@pytest.mark.parametrize("text", [
    "I can't help with that.",
    "I'm sorry, but I cannot assist with that request.",
    "Sorry, I am unable to provide that information.",
    "As an AI language model, I cannot browse the internet.",
])
def test_refusals_veto(text):
    sig = structure.check(REQ, resp(text))
    assert sig.veto and sig.reason.startswith("refusal")


@pytest.mark.parametrize("text", ["I don't know.", "I'm not sure.", "Not enough information to answer."])
def test_non_answers_veto(text):
    assert structure.check(REQ, resp(text)).veto


def test_refusal_phrase_inside_a_long_helpful_answer_is_not_a_refusal():
    text = ("I can't help with that directly, but here is how TCP reacts: on a loss signal the sender halves "
            "its congestion window (multiplicative decrease), then grows it by one segment per round trip "
            "(additive increase). Fast retransmit resends the lost segment after three duplicate ACKs, and "
            "fast recovery avoids falling back to slow start in that case.")
    assert not structure.check(REQ, resp(text)).veto


def test_too_short_for_min_length_vetoes():
    sig = structure.check(REQ, resp("TCP slows."), min_length=50)
    assert sig.veto and "min_length=50" in sig.reason
    assert not structure.check(REQ, resp("TCP slows."), min_length=5).veto


def test_repetition_loop_vetoes():
    text = "The window shrinks and then the window grows again. " * 20
    sig = structure.check(REQ, resp(text))
    assert sig.veto and "repetition" in sig.reason


def test_long_varied_answer_is_not_a_loop():
    words = " ".join(f"word{i}" for i in range(200))
    assert structure.check(REQ, resp(words)).score == 1.0


def test_hedging_lowers_the_score_without_veto():
    sig = structure.check(REQ, resp("I think it probably halves the window, maybe."))
    assert not sig.veto and sig.score < 0.5 and "hedg" in sig.reason


def test_one_hedge_in_a_long_answer_costs_little():
    text = ("On loss TCP halves the congestion window, which is called multiplicative decrease. Afterwards the "
            "sender adds one segment per round trip, the additive increase phase. Fast retransmit resends a "
            "segment after three duplicate acknowledgements, and fast recovery keeps the pipe full meanwhile. "
            "The initial window may be tuned per route. Slow start doubles the window each round trip until "
            "the threshold is reached, then congestion avoidance takes over with linear growth.")
    sig = structure.check(REQ, resp(text))
    assert 0.8 < sig.score < 1.0


def test_clean_answer_scores_one():
    sig = structure.check(REQ, resp("On loss, TCP halves its congestion window and then grows it linearly."))
    assert sig.score == 1.0 and not sig.veto


def test_tables_and_templated_lists_are_not_loops():
    rows = "\n".join(f"| web-{i:02d} | 10.0.{i}.{i * 7 % 255} | up | {i * 3} ms | eu-west-1 |" for i in range(30))
    table = "| host | ip | state | latency | region |\n| --- | --- | --- | --- | --- |\n" + rows
    steps = "\n".join(f"- Step {i}: restart the pod web-{i} and wait until it reports ready." for i in range(20))
    assert structure.check(REQ, resp(table)).score == 1.0
    assert structure.check(REQ, resp(steps)).score == 1.0


def test_answer_that_degenerates_into_a_loop_after_a_good_start_vetoes():
    text = ("On loss TCP halves its congestion window and then grows it linearly per round trip. "
            + "and then and then and then the window " * 40)
    assert structure.check(REQ, resp(text)).veto


@pytest.mark.parametrize("text", [
    "Unknown error codes are logged at WARN level by the gateway.",
    "I don't know the exact figure for last week, but the dashboard showed roughly 5% of requests failing.",
])
def test_answers_that_merely_start_like_a_non_answer_are_kept(text):
    assert not structure.check(REQ, resp(text)).veto


def test_bare_unknown_is_a_non_answer():
    assert structure.check(REQ, resp("Unknown.")).veto
