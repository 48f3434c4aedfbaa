import pytest

from cascadeflow.errors import ConfigurationError
from cascadeflow.messages import build_request
from cascadeflow.models import ModelConfig
from cascadeflow.routing import ComplexityRouter, estimate_complexity

TIERS = (ModelConfig("gpt-4o-mini"), ModelConfig("gpt-4o"))

HARD = (
    "Design a distributed rate limiter for a multi-region API. It must handle one million requests per "
    "second, ensure at most 1% overshoot during a partition, and survive the loss of a whole region without "
    "manual intervention. Compare token bucket and sliding window approaches and explain the trade-offs, "
    "justify which one you pick, and derive an error bound for the overshoot under clock skew. Then:\n"
    "1. give the data model\n2. give the Python code for the core algorithm\n3. describe how to test it\n"
    "```python\ndef allow(key: str) -> bool:\n    ...\n```"
)


def test_the_fruit_list_is_simple_despite_list_and_create():
    est = estimate_complexity(build_request("Create a short list of five common fruits for kids"))
    assert est.level == "simple"
    assert est.score < 0.1


def test_a_long_multi_constraint_design_question_with_code_is_expert():
    est = estimate_complexity(build_request(HARD))
    assert est.level == "expert", est
    assert any("constraints" in r for r in est.reasons)


@pytest.mark.parametrize("text", ["Analyze this.", "Explain why the sky is blue in one sentence",
                                  "Design a logo idea for a bakery, just a quick suggestion"])
def test_reasoning_words_alone_do_not_make_a_short_request_hard(text):
    assert estimate_complexity(build_request(text)).score < 0.3


def test_router_keeps_the_cascade_below_threshold_and_skips_it_above():
    router = ComplexityRouter(threshold=0.75)
    easy, _ = router.decide(build_request("Create a short list of five common fruits for kids"), TIERS)
    assert easy.models == TIERS and easy.label == "cascade"
    hard, est = router.decide(build_request(HARD), TIERS)
    assert hard.models == (TIERS[-1],) and hard.label == "direct"
    assert "straight to the strongest tier" in hard.reason and est.score >= 0.75


def test_threshold_is_validated():
    with pytest.raises(ConfigurationError):
        ComplexityRouter(threshold=0)


def test_long_conversations_and_tools_add_to_the_estimate():
    short = build_request("What is the next step for the failing deploy?")
    turns = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"step {i} of the deploy failed"}
             for i in range(9)]
    turns.append({"role": "user", "content": "What is the next step for the failing deploy?"})
    long = build_request(turns, tools=[{"name": "get_logs"}, {"name": "rollback"}])
    base, deep = estimate_complexity(short), estimate_complexity(long)
    assert deep.score > base.score
    assert any("messages" in r for r in deep.reasons) and any("tools" in r for r in deep.reasons)


def test_the_score_is_bounded_and_levels_follow_it():
    est = estimate_complexity(build_request(HARD + "\n" + HARD))
    assert 0.0 <= est.score <= 1.0 and est.level == "expert"
    assert estimate_complexity(build_request("hi")).level == "simple"


def test_a_single_tier_is_never_shortcut_and_no_tiers_is_an_error():
    router = ComplexityRouter(0.5)
    route, _ = router.decide(build_request(HARD), TIERS[:1])
    assert route.models == TIERS[:1] and route.label == "cascade"
    with pytest.raises(ConfigurationError, match="at least one tier"):
        router.decide(build_request(HARD), ())
