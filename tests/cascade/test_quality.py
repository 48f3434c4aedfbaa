"""assess(): vetoes reject, the weakest present signal meets the bar, signals are never fabricated."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cascadeflow.cascade.calibration import Calibration
from cascadeflow.cascade.quality import PRESETS, QualityConfig, Signal, Verdict, assess
from cascadeflow.errors import ConfigurationError
from cascadeflow.messages import Response, TokenLogprob, ToolCall, build_request

QUESTION = "Explain how TCP congestion control reacts to packet loss."
GOOD = ("When TCP detects packet loss it treats it as congestion: the sender halves its congestion window, "
        "then grows it again by one segment per round trip until loss recurs.")


def resp(text: str = GOOD, *, logprob: float | None = None, **kw) -> Response:
    lps = None if logprob is None else tuple(TokenLogprob(w, logprob) for w in text.split())
    return Response(content=text, model="m", provider="p", logprobs=lps, **kw)


REQ = build_request(QUESTION)


def test_off_topic_tokyo_weather_answer_is_rejected_without_logprobs():
    for question in ("What is the capital of Australia?", QUESTION, "How do I rotate the TLS certificate?"):
        verdict = assess(build_request(question), resp("The weather in Tokyo is sunny today."), QualityConfig())
        assert not verdict.accepted and "relevance" in verdict.reason


def test_truncated_draft_is_rejected():
    verdict = assess(REQ, resp(GOOD, finish_reason="length"), QualityConfig(threshold=0.0))
    assert not verdict.accepted and "length" in verdict.reason


def test_refused_draft_is_rejected():
    verdict = assess(REQ, resp("I'm sorry, but I can't help with that."), QualityConfig(threshold=0.0))
    assert not verdict.accepted and verdict.reason.startswith("rejected: structure: refusal")


def test_malformed_json_draft_is_rejected_when_json_is_required():
    verdict = assess(build_request("Give the incident as JSON"), resp('{"severity": "P0",'),
                     QualityConfig(required_format="json", threshold=0.0))
    assert not verdict.accepted and "format" in verdict.used


def test_json_schema_config_requires_json_and_validates_it():
    cfg = QualityConfig(json_schema={"type": "object", "required": ["severity"]})
    assert cfg.required_format == "json"
    req = build_request("Give the incident severity as JSON")
    assert not assess(req, resp('{"title": "x"}'), cfg).accepted
    assert assess(req, resp('{"severity": "P1"}'), cfg).accepted


def test_invalid_tool_arguments_are_rejected():
    req = build_request("Page the db team", tools=[{"name": "page", "parameters": {
        "type": "object", "properties": {"team": {"type": "string"}}, "required": ["team"]}}])
    bad = Response("", "m", "p", tool_calls=(ToolCall("1", "page", '{"team": 3}'),), finish_reason="tool_calls")
    good = Response("", "m", "p", tool_calls=(ToolCall("1", "page", '{"team": "db"}'),), finish_reason="tool_calls")
    assert not assess(req, bad, QualityConfig(threshold=0.0)).accepted
    verdict = assess(req, good, QualityConfig())
    assert verdict.accepted and verdict.used == ("structure", "tool_args")


def test_wrong_arithmetic_is_rejected_even_with_confident_logprobs():
    req = build_request("What is 17 times 23? Show the multiplication.")
    verdict = assess(req, resp("Multiplying: 17*23 = 381, so the answer is 381.", logprob=-0.01), QualityConfig())
    assert not verdict.accepted and "17*23=381 (is 391)" in verdict.reason


def test_low_but_present_logprobs_follow_the_threshold():
    draft = resp(GOOD, logprob=math.log(0.55))
    above = assess(REQ, draft, QualityConfig(threshold=0.5))
    below = assess(REQ, draft, QualityConfig(threshold=0.6))
    assert above.accepted and not below.accepted
    assert above.score == pytest.approx(0.55) and "logprob" in below.reason
    assert above.used == ("structure", "logprob", "relevance")


def test_absent_logprobs_are_left_out_not_fabricated():
    verdict = assess(REQ, resp(GOOD), QualityConfig())
    assert "logprob" not in verdict.used
    assert verdict.used == ("structure", "relevance")
    assert verdict.signal("logprob") is None
    assert "(structure, relevance)" in verdict.reason


def test_reported_confidence_stands_in_for_logprobs():
    verdict = assess(REQ, resp(GOOD, confidence=0.3), QualityConfig(threshold=0.5))
    assert not verdict.accepted and verdict.signal("logprob").score == pytest.approx(0.3)


def test_complexity_thresholds_and_raise_bar():
    cfg = QualityConfig(threshold=0.5, thresholds_by_complexity={"simple": 0.4, "expert": 0.9})
    draft = resp(GOOD, logprob=math.log(0.6))
    assert assess(REQ, draft, cfg, complexity="simple").threshold == pytest.approx(0.4)
    assert assess(REQ, draft, cfg, complexity="simple").accepted
    assert not assess(REQ, draft, cfg, complexity="expert").accepted
    assert assess(REQ, draft, cfg, complexity="unknown-level").threshold == pytest.approx(0.5)
    raised = assess(REQ, draft, cfg, raise_bar=0.2)
    assert raised.threshold == pytest.approx(0.7) and not raised.accepted
    assert assess(REQ, draft, cfg, complexity="expert", raise_bar=0.5).threshold == 1.0


def test_threshold_aliases():
    assert QualityConfig(confidence_threshold=0.8).threshold == 0.8
    assert QualityConfig(threshold=0.6).confidence_threshold == 0.6
    assert QualityConfig().threshold == 0.7
    assert QualityConfig(threshold=0.8).with_(threshold=0.5).threshold == 0.5
    with pytest.raises(ConfigurationError, match="aliases"):
        QualityConfig(threshold=0.6, confidence_threshold=0.8)


@pytest.mark.parametrize("kwargs", [
    {"threshold": 1.5}, {"threshold": "high"}, {"min_length": -1}, {"required_format": "xml"},
    {"thresholds_by_complexity": {"simple": 2}}, {"validators": [42]}, {"signals": ["vibes"]},
    {"calibration": 3}, {"json_schema": {"type": "nope"}},
])
def test_bad_config_is_a_clear_error(kwargs):
    with pytest.raises(ConfigurationError, match="QualityConfig|JSON Schema"):
        QualityConfig(**kwargs)


def test_presets_order_strictness():
    strict, balanced, cheap = QualityConfig.strict(), QualityConfig.balanced(), QualityConfig.cost_optimized()
    assert strict.threshold > balanced.threshold > cheap.threshold
    for level in ("simple", "moderate", "hard", "expert"):
        assert strict.threshold_for(level) > balanced.threshold_for(level) > cheap.threshold_for(level)
    assert QualityConfig.preset("cost-optimized") == cheap
    assert QualityConfig.preset("strict", threshold=0.99).threshold == 0.99
    assert set(PRESETS) == {"strict", "balanced", "cost_optimized"}
    with pytest.raises(ConfigurationError, match="strict, balanced, cost_optimized"):
        QualityConfig.preset("yolo")


def test_preset_changes_the_decision_on_the_same_draft():
    draft = resp(GOOD, logprob=math.log(0.75))
    assert assess(REQ, draft, QualityConfig.cost_optimized(), complexity="moderate").accepted
    assert not assess(REQ, draft, QualityConfig.strict(), complexity="moderate").accepted


def test_custom_validators_float_bool_signal_and_none():
    def mentions_window(request, response):
        return "window" in response.content

    def tone(request, response):
        return 0.4

    def no_opinion(request, response):
        return None

    def cites(request, response):
        return Signal("citations", 0.9, "one source cited")

    cfg = QualityConfig(threshold=0.3, validators=[mentions_window, tone, no_opinion, cites])
    verdict = assess(REQ, resp(GOOD), cfg)
    assert verdict.used == ("structure", "relevance", "mentions_window", "tone", "citations")
    assert verdict.accepted and verdict.score == pytest.approx(0.4)
    failed = assess(REQ, resp(GOOD.replace("window", "rate")), cfg)
    assert not failed.accepted and "mentions_window: failed" in failed.reason


def test_custom_validator_returning_garbage_is_a_clear_error():
    cfg = QualityConfig(validators=[lambda req, res: "great"])
    with pytest.raises(ConfigurationError, match="returned 'great'"):
        assess(REQ, resp(GOOD), cfg)


def test_disabling_every_signal_rejects_for_lack_of_evidence():
    verdict = assess(REQ, resp(GOOD), QualityConfig(signals=[]))
    assert not verdict.accepted and verdict.signals == () and "no signal" in verdict.reason


def test_calibrated_verdict_reports_a_probability():
    rows = [({"logprob": p / 10}, p >= 5) for p in range(11)] * 3
    cfg = QualityConfig(threshold=0.5, calibration=Calibration.fit(rows))
    high = assess(REQ, resp(GOOD, logprob=math.log(0.9)), cfg)
    low = assess(REQ, resp(GOOD, logprob=math.log(0.2)), cfg)
    assert high.calibrated and high.accepted and high.reason.startswith("accepted: p=")
    assert not low.accepted and low.score < 0.5


def test_calibration_never_overrides_a_veto():
    cal = Calibration(weights={"structure": (0.0, 0.0)}, intercept=10.0)
    verdict = assess(REQ, resp(GOOD, finish_reason="length"), QualityConfig(calibration=cal))
    assert verdict.score > 0.99 and not verdict.accepted


def test_calibration_path_is_loaded(tmp_path):
    path = Calibration(weights={"logprob": (4.0, -1.0)}, intercept=-2.0).save(tmp_path / "cal.json")
    cfg = QualityConfig(calibration=str(path))
    assert isinstance(cfg.calibration, Calibration) and cfg.calibration.weights["logprob"] == (4.0, -1.0)


def test_verdict_is_immutable_and_lists_vetoes():
    verdict = assess(REQ, resp(""), QualityConfig())
    assert isinstance(verdict, Verdict) and verdict.vetoes[0].name == "structure"
    with pytest.raises(AttributeError):
        verdict.accepted = True  # type: ignore[misc]


def test_default_config_is_used_when_none_given():
    assert assess(REQ, resp(GOOD)).threshold == QualityConfig().threshold


def test_verdict_to_dict_is_json_ready():
    import json

    verdict = assess(REQ, resp(GOOD, logprob=math.log(0.9)), QualityConfig())
    data = json.loads(json.dumps(verdict.to_dict()))
    assert data["accepted"] is True and data["used"] == ["structure", "logprob", "relevance"]
    assert data["signals"][1]["name"] == "logprob" and data["signals"][1]["score"] == pytest.approx(0.9)


@settings(max_examples=60, deadline=None)
@given(st.floats(0.01, 1.0), st.floats(0.0, 1.0))
def test_on_topic_draft_with_logprobs_is_accepted_exactly_when_confidence_reaches_the_bar(p, bar):
    verdict = assess(REQ, resp(GOOD, logprob=math.log(p)), QualityConfig(threshold=bar))
    assert verdict.score == pytest.approx(p)
    assert verdict.accepted == (verdict.score >= bar)


def test_a_signal_outside_zero_to_one_is_refused():
    with pytest.raises(ConfigurationError, match="0..1"):
        Signal("custom", 1.5, "too sure")


def test_unknown_complexity_level_is_warned_about(caplog):
    with caplog.at_level("WARNING", logger="cascadeflow.cascade.quality"):
        QualityConfig(thresholds_by_complexity={"hrad": 0.9, "simple": 0.5})
    assert "hrad" in caplog.text and "simple" not in caplog.text.split("produces")[0]


def test_combine_is_the_weakest_signal():
    from cascadeflow.cascade.quality import combine

    assert combine([Signal("a", 0.9, ""), Signal("b", 0.4, ""), Signal("c", 1.0, "")]) == 0.4
    assert combine([]) == 0.0


def test_same_draft_different_question_only_relevance_changes():
    on = assess(build_request(QUESTION), resp(GOOD), QualityConfig())
    off = assess(build_request("Which team owns the billing database backups?"), resp(GOOD), QualityConfig())
    assert on.accepted and not off.accepted
    assert on.signal("structure") == off.signal("structure")
    assert off.signal("relevance").score < 0.1
