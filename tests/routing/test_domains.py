import pytest

from cascadeflow.errors import ConfigurationError
from cascadeflow.messages import build_request
from cascadeflow.models import ModelConfig
from cascadeflow.routing import DomainConfig, DomainGuess, detect_domain

CODER = ModelConfig(name="deepseek-coder", provider="ollama", cost=0.0)
MINI = ModelConfig(name="gpt-4o-mini", provider="openai", cost=0.00015)
BIG = ModelConfig(name="gpt-4o", provider="openai", cost=0.00625)


@pytest.mark.parametrize("text", [
    "Why does this fail?\n```python\nprint(x)\n```",
    "Traceback (most recent call last):\n  File \"app.py\", line 3, in <module>\nKeyError: 'id'",
    "Exception in thread main\n    at com.acme.Billing.charge(Billing.java:42)",
    "def parse(line):\n    return line.split(',')\nwhy is it slow?",
    "SELECT id, name FROM users WHERE created_at > now() - interval '1 day'",
])
def test_code_is_detected_from_structure(text):
    guess = detect_domain(text)
    assert guess is not None and guess.domain == "CODE", guess


@pytest.mark.parametrize("text", [
    "Solve for x: 3x + 5 = 20",
    "What is \\frac{3}{4} of 120?",
    "If 12 * 7 = 84, what is 84 / 4 + 3?",
])
def test_math_is_detected(text):
    guess = detect_domain(text)
    assert guess is not None and guess.domain == "MATH", guess


@pytest.mark.parametrize("text", [
    "Create a short list of five common fruits for kids",
    "I love Python the snake, what does it eat?",
    "Summarize the on-call handbook for new hires",
])
def test_plain_prose_is_not_a_domain(text):
    assert detect_domain(text) is None


def test_domain_config_routes_code_to_its_cascade_and_else_to_default():
    config = DomainConfig(domains={"CODE": [CODER, BIG], "DEFAULT": [MINI, BIG]})
    code = config.route(build_request("```js\nconst a = 1;\n```\nwhat is wrong?"))
    assert code.models == (CODER, BIG) and code.label == "CODE"
    assert code.reason.startswith("domain=CODE (code fence")
    prose = config.route(build_request("Say hello to the team"))
    assert prose.models == (MINI, BIG) and prose.reason == "no domain detected; DEFAULT"
    math = config.route(build_request("Solve for x: 3x + 5 = 20"))
    assert math.models == (MINI, BIG) and "MATH has no cascade" in math.reason


def test_metadata_domain_wins_and_only_the_last_user_turn_is_read():
    config = DomainConfig(domains={"CODE": [CODER], "LEGAL": [BIG], "DEFAULT": [MINI]})
    assert config.route(build_request("anything", metadata={"domain": "legal"})).models == (BIG,)
    chat = [{"role": "user", "content": "```py\nx=1\n```"}, {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "thanks, and what time is it in Paris?"}]
    assert config.route(build_request(chat)).label == "DEFAULT"


def test_classifier_hook_is_used_when_rules_find_nothing():
    seen = []

    def classifier(text):
        seen.append(text)
        return ("LEGAL", 0.9) if "contract" in text else ("LEGAL", 0.2)

    config = DomainConfig(domains={"LEGAL": [BIG], "DEFAULT": [MINI]}, classifier=classifier, min_confidence=0.5)
    assert config.route(build_request("review this contract clause")).label == "LEGAL"
    assert config.route(build_request("hello there")).label == "DEFAULT"  # 0.2 < 0.5
    config.route(build_request("```py\nx=1\n```"))  # rules decide: classifier not asked
    assert len(seen) == 2


def test_domain_config_validation():
    with pytest.raises(ConfigurationError, match="DEFAULT"):
        DomainConfig(domains={})
    with pytest.raises(ConfigurationError, match="min_confidence"):
        DomainConfig(domains={"DEFAULT": [MINI]}, min_confidence=2)
    assert DomainConfig(domains={"CODE": [CODER]}).route(build_request("hello")) is None


def test_the_stronger_evidence_wins_between_code_and_math():
    guess = detect_domain("```python\nimport math\ndef area(r):\n    return math.pi * r ** 2\n```\nwhat is 3 * 4 = ?")
    assert guess.domain == "CODE"
    assert "code fence" in guess.reason and 0 < guess.score <= 1


def test_a_custom_detector_replaces_the_rules():
    config = DomainConfig(domains={"LOGS": [MINI], "DEFAULT": [BIG]},
                          detector=lambda text: (DomainGuess(domain="LOGS", score=1.0, reason="log lines")
                                                 if "ERROR" in text else None))
    assert config.route(build_request("2026-01-01 ERROR db timeout")).label == "LOGS"
    assert config.route(build_request("hello")).models == (BIG,)


def test_all_models_lists_each_model_once():
    config = DomainConfig(domains={"CODE": [CODER, BIG], "DEFAULT": [MINI, BIG]})
    assert [m.id for m in config.all_models()] == [CODER.id, BIG.id, MINI.id]
