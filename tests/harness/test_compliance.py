"""Compliance presets as data, user policies, and what the policy does with them in enforce/observe mode."""

from __future__ import annotations

import pytest

from cascadeflow import harness
from cascadeflow.errors import ConfigurationError, PolicyViolation
from cascadeflow.harness.compliance import PRESETS, load_compliance, load_compliance_file
from cascadeflow.messages import Message, TextPart, ToolCall, build_request
from cascadeflow.models import ModelConfig

OPENAI = ModelConfig("gpt-4o-mini", provider="openai", input_price_per_million=1, output_price_per_million=2)
EU_MODEL = ModelConfig("gpt-4o-mini-eu", provider="openai", input_price_per_million=1, output_price_per_million=2,
                       extra={"region": "eu"})
US_MODEL = ModelConfig("gpt-4o-mini-us", provider="openai", input_price_per_million=1, output_price_per_million=2,
                       extra={"region": "us"})
CLAUDE_EU = ModelConfig("claude-eu", provider="anthropic", input_price_per_million=1, output_price_per_million=2,
                        extra={"region": "eu"})
LOCAL = ModelConfig("qwen", provider="ollama")


def test_every_preset_loads_from_its_file():
    for name in PRESETS:
        policy = load_compliance(name)
        assert policy.name == name and policy.description
    assert load_compliance("strict").allowed_providers == {"local", "vllm", "ollama"}
    assert load_compliance("pci").block_kinds == ("card",)
    assert load_compliance("gdpr").allowed_regions == {"eu", "eea"}


def test_user_policy_from_a_toml_file_and_from_a_dict(tmp_path):
    path = tmp_path / "ours.toml"
    path.write_text('name = "ours"\n[providers]\nallowed = ["anthropic"]\n[pii]\naction = "block"\nkinds = ["email"]\n')
    policy = load_compliance_file(str(path))
    assert policy.name == "ours" and policy.allowed_providers == {"anthropic"} and policy.pii_action == "block"
    assert load_compliance({"models": {"denied": ["gpt-4o"]}}).denied_models == {"gpt-4o"}


@pytest.mark.parametrize("spec, message", [
    ("sox", "unknown compliance preset 'sox'"),
    ({"pii": {"action": "shred"}}, "action must be one of"),
    ({"pii": {"action": "redact", "kinds": ["passport"]}}, "unknown PII kinds"),
    ({"providers": {"allowed": "openai"}}, "must be a list of strings"),
    ("missing.toml", "unknown compliance preset 'missing.toml'.*compliance_file="),
])
def test_bad_compliance_specs_say_what_is_wrong(spec, message):
    with pytest.raises(ConfigurationError, match=message):
        load_compliance(spec)


def test_a_preset_name_never_loads_a_path_and_a_file_may_not_pose_as_a_preset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gdpr.toml").write_text('name = "gdpr"\n[pii]\naction = "allow"\n')
    assert load_compliance("gdpr").pii_action != "allow"  # the preset, not the file beside the program
    with pytest.raises(ConfigurationError, match="unknown compliance preset"):
        load_compliance("gdpr.toml")
    with pytest.raises(ConfigurationError, match="names itself 'gdpr', a preset's name"):
        load_compliance_file(tmp_path / "gdpr.toml")
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_compliance_file(tmp_path / "missing.toml")


def test_model_violations_cover_providers_models_and_regions():
    assert load_compliance("strict").model_violation(OPENAI) is not None
    assert load_compliance("strict").model_violation(LOCAL) is None
    gdpr = load_compliance("gdpr")
    assert gdpr.model_violation(EU_MODEL) is None and gdpr.model_violation(OPENAI) is None  # undeclared allowed
    assert "region 'us'" in gdpr.model_violation(US_MODEL)
    strict_region = load_compliance({"regions": {"allowed": ["eu"], "require_declared": True}})
    assert "declares no region" in strict_region.model_violation(OPENAI)


async def test_enforce_switches_to_a_compliant_model_of_the_same_provider(scripted, call):
    provider, runtime = scripted
    harness.init(mode="enforce", audit=False)
    with harness.run(compliance="gdpr", models=[CLAUDE_EU, EU_MODEL]) as session:
        await call(runtime, model=US_MODEL)
    assert provider.requests[0].model == "gpt-4o-mini-eu"  # never the anthropic one: no cross-provider opt-in
    switch = next(r for r in session.trace() if r.action == "switch_model")
    assert switch.applied and switch.model_requested == "openai/gpt-4o-mini-us"
    assert switch.model_used == "openai/gpt-4o-mini-eu"


async def test_cross_provider_switch_needs_an_explicit_opt_in(scripted, call):
    provider, runtime = scripted
    harness.init(mode="enforce", audit=False)
    with harness.run(compliance="gdpr", models=[CLAUDE_EU]), \
            pytest.raises(PolicyViolation, match="no compliant candidate model of provider 'openai'"):
        await call(runtime, model=US_MODEL)
    with harness.run(compliance="gdpr", models=[CLAUDE_EU], allow_cross_provider=True):
        await call(runtime, model=US_MODEL)
    assert [r.model for r in provider.requests] == ["claude-eu"]


async def test_observe_records_would_be_switch_without_changing_the_model(scripted, call):
    provider, runtime = scripted
    harness.init(mode="observe", audit=False)
    with harness.run(compliance="strict") as session:
        await call(runtime, model=OPENAI)
    assert provider.requests[0].model == "gpt-4o-mini"
    stop = next(r for r in session.trace() if r.action == "stop")
    assert stop.applied is False and "not in allowed providers" in stop.reason


async def test_enforce_redacts_pii_inside_structured_messages(scripted):
    provider, runtime = scripted
    harness.init(mode="enforce", audit=False)
    messages = [
        Message.system("You help customers."),
        Message.user((TextPart("Card holder mail: jane.doe@example.com"), TextPart("call +44 20 7946 0958"))),
        Message.assistant(None, [ToolCall("c1", "lookup", '{"ssn": "123-45-6789"}')]),
        Message.tool("c1", "IBAN GB82 WEST 1234 5698 7654 32 on file"),
    ]
    with harness.run(compliance="gdpr") as session:
        ctx = runtime.new_call()
        await runtime.attempt(OPENAI, build_request(messages), ctx)
        runtime.finish(ctx, action="allow", model_selected=OPENAI.id, response=None)
    sent = provider.requests[0].messages
    assert [m.role for m in sent] == ["system", "user", "assistant", "tool"]
    assert sent[1].content == (TextPart("Card holder mail: [REDACTED_EMAIL]"), TextPart("call [REDACTED_PHONE]"))
    assert sent[2].tool_calls[0].arguments == '{"ssn": "[REDACTED_SSN]"}'
    assert sent[3].content == "IBAN [REDACTED_IBAN] on file" and sent[3].tool_call_id == "c1"
    redact = next(r for r in session.trace() if r.action == "redact")
    assert redact.applied and redact.details["pii"] == {"email": 1, "phone": 1, "ssn": 1, "iban": 1}
    assert "jane" not in str(redact.to_dict())  # the trace counts kinds, it never copies the data


async def test_observe_mode_never_redacts_but_records_what_it_would(scripted, call):
    provider, runtime = scripted
    harness.init(mode="observe", audit=False)
    with harness.run(compliance="hipaa") as session:
        await call(runtime, text="patient ssn 123-45-6789")
    assert provider.requests[0].messages[0].content == "patient ssn 123-45-6789"
    assert next((r.action, r.applied) for r in session.trace()) == ("redact", False)


async def test_pci_blocks_card_numbers_in_enforce_mode(scripted, call):
    provider, runtime = scripted
    harness.init(mode="enforce", audit=False)
    with harness.run(compliance="pci"):
        with pytest.raises(PolicyViolation, match="1 card"):
            await call(runtime, text="charge 4111 1111 1111 1111 please")
        await call(runtime, text="order 4111 1111 1111 1112")  # fails the Luhn check: not a card
    assert len(provider.requests) == 1


async def test_default_compliance_from_init_applies_to_every_run(scripted, call):
    _provider, runtime = scripted
    harness.init(mode="enforce", audit=False, compliance="strict")
    with harness.run(), pytest.raises(PolicyViolation, match="strict"):
        await call(runtime, model=OPENAI)
