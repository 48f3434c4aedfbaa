"""Instrumented SDK calls take the cache step after the run scope's policy: in enforce mode a call the
compliance policy refuses is refused though its answer is cached, and a redacted call is looked up under the
text actually sent. Real SDKs against the loopback hosts."""

from __future__ import annotations

import json
import uuid

import anthropic
import pytest

import cascadeflow
from cascadeflow import CacheConfig
from cascadeflow.errors import PolicyViolation

ANSWER = "Rotate the leaked credential and restart the checkout workers"
NO_EMAIL = {"name": "no-email", "pii": {"action": "block", "kinds": ["email"]}}
REDACT_EMAIL = {"name": "redact-email", "pii": {"action": "redact", "kinds": ["email"]}}


def _ask(client, who: str, **kw):
    return client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": f"{who} cannot log in: why?"}], **kw)


def _audit(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _init(audit_path) -> None:
    cascadeflow.init(mode="enforce", audit=str(audit_path),
                     cache_config=CacheConfig(backend="memory", key_prefix=f"t{uuid.uuid4().hex}:"))


@pytest.mark.parametrize("stream", [False, True])
def test_a_call_compliance_blocks_is_refused_though_its_answer_is_cached(oa, openai_server, audit_path, stream):
    openai_server.enqueue(text=ANSWER, usage={"input": 20, "output": 9})
    _init(audit_path)
    _ask(oa, "alice@example.com")  # outside any run: sent and stored
    with cascadeflow.run(compliance=NO_EMAIL), pytest.raises(PolicyViolation, match="1 email"):
        _ask(oa, "alice@example.com", stream=stream)
    assert len(openai_server.requests) == 1
    refused = _audit(audit_path)[-1]
    assert refused["action"] == "stop" and "cache" not in refused["metadata"]


def test_a_redacted_sdk_call_is_served_the_answer_stored_under_the_redacted_text(oa, openai_server, audit_path):
    openai_server.enqueue(text=ANSWER, usage={"input": 20, "output": 9})
    _init(audit_path)
    with cascadeflow.run(compliance=REDACT_EMAIL):
        first = _ask(oa, "alice@example.com")
        again = _ask(oa, "bob@example.org")
    assert len(openai_server.requests) == 1
    assert json.loads(openai_server.requests[0].body)["messages"][0]["content"] == \
        "[REDACTED_EMAIL] cannot log in: why?"
    assert again.choices[0].message.content == first.choices[0].message.content == ANSWER
    assert [r["action"] for r in _audit(audit_path)] == ["allow", "cache_hit"]


def test_a_model_the_run_may_not_use_is_refused_for_an_anthropic_stream_helper(anthropic_server, audit_path):
    an = anthropic.Anthropic(base_url=anthropic_server.base_url, api_key="sk-ant-test", max_retries=0)
    anthropic_server.enqueue(text=ANSWER, usage={"input": 20, "output": 9})
    _init(audit_path)
    question = [{"role": "user", "content": "why is checkout down?"}]
    an.messages.create(model="claude-3-5-haiku-latest", max_tokens=100, messages=question)
    only_opus = {"name": "only-opus", "models": {"allowed": ["anthropic/claude-opus-4"]}}
    stream = an.messages.stream(model="claude-3-5-haiku-latest", max_tokens=100, messages=question)
    with cascadeflow.run(compliance=only_opus), pytest.raises(PolicyViolation, match="not in allowed"), stream:
        pass
    assert len(anthropic_server.requests) == 1
