"""An SDK client's calls belong to the vendor its base URL names: a provider's configured base URL
(GROQ_BASE_URL, ...), else a provider's public host; a host no provider claims is recorded as unknown, under
the unknown-price policy, and so is a resource no live client holds, which public API cannot trace to its client."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from cascadeflow import harness
from cascadeflow.errors import PolicyViolation, UnknownModelPriceError
from cascadeflow.harness.instrument.vendor import Vendor, normalise, vendor_for

MSGS = [{"role": "user", "content": "Why is the checkout p99 at 900 ms since the deploy?"}]


@pytest.fixture
def groq_env(monkeypatch, openai_server):
    """The loopback host is Groq's base URL (and nobody else's)."""
    monkeypatch.delenv("OPENAI_BASE_URL")
    monkeypatch.setenv("GROQ_BASE_URL", openai_server.base_url)
    openai_server.enqueue(text="Roll back the deploy.", usage={"input": 20, "output": 5})
    return openai.OpenAI(base_url=openai_server.base_url, api_key="gsk-test", max_retries=0)


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_public_hosts_name_their_provider(monkeypatch):
    for name in ("OPENAI", "GROQ", "ANTHROPIC", "TOGETHER"):
        monkeypatch.delenv(f"{name}_BASE_URL", raising=False)
    assert vendor_for("openai", "https://api.groq.com/openai/v1/") == Vendor("groq", "api.groq.com")
    assert vendor_for("openai", "https://api.openai.com/v1") == Vendor("openai", "api.openai.com")
    assert vendor_for("openai", "https://api.together.xyz/v1").provider == "together"
    assert vendor_for("anthropic", "https://api.anthropic.com") == Vendor("anthropic", "api.anthropic.com")
    assert vendor_for("openai", None) == Vendor("openai", "api.openai.com")


def test_a_configured_base_url_wins_and_the_wire_format_must_match(monkeypatch):
    monkeypatch.setenv("GROQ_BASE_URL", "http://gateway.internal:8080/groq/v1")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert vendor_for("openai", "http://gateway.internal:8080/groq") == Vendor("groq", "gateway.internal:8080")
    # an Anthropic client on that URL is not Groq: Groq does not speak the Anthropic wire format
    assert not vendor_for("anthropic", "http://gateway.internal:8080/groq").known


def test_an_unclaimed_host_is_unknown():
    found = vendor_for("openai", "https://llm.example.net/v1")
    assert found == Vendor("openai", "llm.example.net", known=False)
    assert normalise("HTTPS://LLM.example.net/v1/") == "https://llm.example.net"


def test_groq_through_the_openai_sdk_is_priced_as_groq_in_enforce_mode(groq_env, openai_server, audit_path):
    harness.init(mode="enforce", audit=str(audit_path))
    answer = groq_env.chat.completions.create(model="llama-3.1-8b-instant", messages=MSGS, max_tokens=50)
    assert answer.choices[0].message.content == "Roll back the deploy."
    [record] = _records(audit_path)
    assert record["model_selected"] == "groq/llama-3.1-8b-instant"
    assert record["cost_usd"] == pytest.approx((20 * 0.05 + 5 * 0.08) / 1_000_000)


def test_groq_through_the_openai_sdk_is_recorded_as_groq_in_observe_mode(groq_env, audit_path):
    harness.init(mode="observe", audit=str(audit_path))
    groq_env.chat.completions.create(model="llama-3.1-8b-instant", messages=MSGS)
    [record] = _records(audit_path)
    assert record["model_selected"] == "groq/llama-3.1-8b-instant" and record["cost_usd"] > 0
    assert "unpriced" not in record


def test_hipaa_checks_the_vendor_the_client_really_calls(groq_env, openai_server):
    harness.init(mode="enforce", audit=False)
    with harness.run(compliance="hipaa"), pytest.raises(PolicyViolation, match="groq"):
        groq_env.chat.completions.create(model="llama-3.1-8b-instant", messages=MSGS, max_tokens=50)
    assert openai_server.requests == []


def test_an_unknown_host_is_refused_in_enforce_and_recorded_unpriced_in_observe(openai_server, monkeypatch,
                                                                                audit_path):
    monkeypatch.delenv("OPENAI_BASE_URL")  # the loopback host is nobody's now
    client = openai.OpenAI(base_url=openai_server.base_url, api_key="sk-test", max_retries=0)
    harness.init(mode="enforce", audit=False)
    with pytest.raises(UnknownModelPriceError, match="127.0.0.1.*BASE_URL"):
        client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, max_tokens=20)
    assert openai_server.requests == []
    openai_server.enqueue(text="fine", usage={"input": 9, "output": 1})
    harness.init(mode="observe", audit=str(audit_path))
    client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    [record] = _records(audit_path)
    assert record["unpriced"] is True and record["cost_usd"] == 0
    assert record["unknown_host"] == openai_server.base_url.split("/")[2]


def test_an_anthropic_client_on_its_configured_url_stays_anthropic(anthropic_server, audit_path):
    anthropic_server.enqueue(text="Check the pool size.", usage={"input": 12, "output": 4})
    harness.init(mode="enforce", audit=str(audit_path))
    client = anthropic.Anthropic(base_url=anthropic_server.base_url, api_key="sk-ant-test", max_retries=0)
    client.messages.create(model="claude-3-5-haiku-20241022", max_tokens=30, messages=MSGS)
    [record] = _records(audit_path)
    assert record["model_selected"] == "anthropic/claude-3-5-haiku-20241022" and record["cost_usd"] > 0


def test_anthropic_stream_helper_checks_the_host_like_create(anthropic_server, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_BASE_URL")  # the loopback host is nobody's now
    harness.init(mode="enforce", audit=False)
    client = anthropic.Anthropic(base_url=anthropic_server.base_url, api_key="sk-ant-test", max_retries=0)
    with pytest.raises(UnknownModelPriceError, match="127.0.0.1.*BASE_URL"), \
            client.messages.stream(model="claude-3-5-haiku-20241022", max_tokens=30, messages=MSGS) as stream:
        "".join(stream.text_stream)
    assert anthropic_server.requests == []


def test_a_client_made_before_init_is_traced_through_the_resources_made_after(openai_server, monkeypatch,
                                                                               audit_path):
    monkeypatch.delenv("OPENAI_BASE_URL")
    monkeypatch.setenv("GROQ_BASE_URL", openai_server.base_url)
    client = openai.OpenAI(base_url=openai_server.base_url, api_key="gsk-made-before-init", max_retries=0)
    harness.init(mode="observe", audit=str(audit_path))
    openai_server.enqueue(text="Roll back.", usage={"input": 20, "output": 5})
    client.chat.completions.create(model="llama-3.1-8b-instant", messages=MSGS)  # the resource is made now
    [record] = _records(audit_path)
    assert record["model_selected"] == "groq/llama-3.1-8b-instant" and record["cost_usd"] > 0


def test_a_resource_made_before_init_is_traced_through_the_client_that_holds_it(openai_server, monkeypatch,
                                                                                audit_path, caplog):
    monkeypatch.delenv("OPENAI_BASE_URL")
    monkeypatch.setenv("GROQ_BASE_URL", openai_server.base_url)
    openai_server.enqueue(text="plain", usage={"input": 9, "output": 1})
    client = openai.OpenAI(base_url=openai_server.base_url, api_key="gsk-resource-before-init", max_retries=0)
    completions = client.chat.completions  # made (and used) before init(), as a framework holding it would
    completions.create(model="llama-3.1-8b-instant", messages=MSGS)
    harness.init(mode="enforce", audit=str(audit_path))
    openai_server.enqueue(text="Roll back.", usage={"input": 20, "output": 5})
    completions.create(model="llama-3.1-8b-instant", messages=MSGS, max_tokens=20)
    [record] = _records(audit_path)
    assert record["model_selected"] == "groq/llama-3.1-8b-instant" and record["cost_usd"] > 0
    assert "unknown_host" not in record and "unknown_host" not in record.get("metadata", {})
    assert not any("unknown-price policy" in r.getMessage() for r in caplog.records)


def test_a_resource_no_client_holds_falls_under_the_unknown_price_policy(openai_server, audit_path, caplog):
    from openai.resources.chat.completions import Completions

    client = openai.OpenAI(base_url=openai_server.base_url, api_key="sk-test", max_retries=0)
    completions = Completions(client)  # built on its own before init(): no public way back to its client
    harness.init(mode="enforce", audit=False)
    with pytest.raises(UnknownModelPriceError, match="made before cascadeflow.init"):
        completions.create(model="gpt-4o-mini", messages=MSGS, max_tokens=20)
    assert openai_server.requests == []  # refused before sending
    harness.init(mode="observe", audit=str(audit_path))
    openai_server.enqueue(text="observed", usage={"input": 9, "output": 1})
    assert completions.create(model="gpt-4o-mini", messages=MSGS).choices[0].message.content == "observed"
    [record] = _records(audit_path)
    assert record["unpriced"] is True and record["cost_usd"] == 0 and record["unknown_host"] == "untraced"
    assert sum("made before cascadeflow.init()" in r.getMessage() for r in caplog.records) == 1  # once per resource
    # the same client's resources made after init() are traced as usual
    openai_server.enqueue(text="traced", usage={"input": 9, "output": 1})
    client.responses.create(model="gpt-4o-mini", input="hi")
    assert _records(audit_path)[-1]["model_selected"] == "openai/gpt-4o-mini" and _records(audit_path)[-1]["cost_usd"] > 0


def test_reset_restores_the_resource_constructors():
    from anthropic.resources.messages import messages
    from openai.resources.chat.completions import completions as chat

    harness.init(mode="observe", audit=False)
    assert "__init__" in vars(chat.Completions) and "__init__" in vars(messages.Messages)
    harness.reset()
    assert "__init__" not in vars(chat.Completions) and "__init__" not in vars(messages.Messages)
    assert chat.Completions.__init__ is chat.Completions.__mro__[1].__init__
