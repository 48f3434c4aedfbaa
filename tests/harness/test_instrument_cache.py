"""Instrumented openai and anthropic SDK calls take the same cache step as CascadeAgent and CascadeFlow: in
enforce mode a repeated call is served from the cache as the SDK's own response object, at $0, with an audit
record marked as a hit; in observe mode it is recorded as a would-be hit and still sent. Real SDKs against
the loopback hosts."""

from __future__ import annotations

import asyncio
import json
import uuid

import anthropic
import openai
import pytest

import cascadeflow
from cascadeflow import CacheConfig
from cascadeflow.cache import open_cache

QUESTION = [{"role": "user", "content": "Why is the checkout pool exhausted?"}]


def _config(tmp_path, backend: str = "sqlite") -> CacheConfig:
    # a fresh SQLite file per test: the cache is shared per configuration and process
    return CacheConfig(backend=backend, sqlite_path=str(tmp_path / f"cache-{uuid.uuid4().hex}.sqlite3"))


def _audit(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _chat(client, **kw):
    return client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, temperature=0, **kw)


def _message(client, **kw):
    return client.messages.create(model="claude-3-5-haiku-latest", max_tokens=200, messages=QUESTION, **kw)


def test_a_repeated_openai_chat_call_is_served_from_the_cache_at_zero_cost_in_enforce_mode(
        oa, openai_server, audit_path, tmp_path):
    config = _config(tmp_path)
    openai_server.enqueue(text="Connections leak in the retry path", usage={"input": 40, "output": 7})
    cascadeflow.init(mode="enforce", audit=str(audit_path), cache_config=config)
    first = _chat(oa)
    again = _chat(oa)
    assert len(openai_server.requests) == 1  # the repeat never reached the provider
    assert isinstance(again, openai.types.chat.ChatCompletion)
    assert again.choices[0].message.content == first.choices[0].message.content
    assert again.choices[0].finish_reason == "stop" and again.model == first.model
    assert (again.usage.prompt_tokens, again.usage.completion_tokens) == (40, 7)
    paid, hit = _audit(audit_path)
    assert paid["action"] == "allow" and paid["cost_usd"] > 0 and paid["metadata"]["cache"] == {"hit": False}
    assert hit["action"] == "cache_hit" and hit["cost_usd"] == 0 and hit["tiers"] == []
    assert hit["metadata"]["cache"]["hit"] is True
    assert hit["metadata"]["cache"]["saved_usd"] == pytest.approx(paid["cost_usd"])
    stats = open_cache(config).stats()
    assert (stats["hits"], stats["misses"], stats["stores"]) == (1, 1, 1)


def test_a_repeated_anthropic_message_is_served_from_the_cache_at_zero_cost_in_enforce_mode(
        an, anthropic_server, audit_path, tmp_path):
    config = _config(tmp_path)
    anthropic_server.enqueue(text="Raise the pool size", usage={"input": 30, "output": 5, "cache_read": 10})
    cascadeflow.init(mode="enforce", audit=str(audit_path), cache_config=config)
    first = _message(an)
    again = _message(an)
    assert len(anthropic_server.requests) == 1
    assert isinstance(again, anthropic.types.Message)
    assert again.content[0].text == first.content[0].text == "Raise the pool size"
    assert again.stop_reason == "end_turn"
    # the SDK's own split of the usage survives the round trip through the cache
    assert (again.usage.input_tokens, again.usage.output_tokens, again.usage.cache_read_input_tokens) == \
        (first.usage.input_tokens, first.usage.output_tokens, first.usage.cache_read_input_tokens)
    paid, hit = _audit(audit_path)
    assert hit["action"] == "cache_hit" and hit["cost_usd"] == 0 and hit["metadata"]["cache"]["hit"] is True
    assert hit["metadata"]["cache"]["saved_usd"] == pytest.approx(paid["cost_usd"]) and paid["cost_usd"] > 0


def test_an_async_openai_call_is_served_from_the_cache_too(openai_server, audit_path, tmp_path):
    aoa = openai.AsyncOpenAI(base_url=openai_server.base_url, api_key="sk-test", max_retries=0)
    openai_server.enqueue(text="Restart the worker", usage={"input": 12, "output": 3})
    cascadeflow.init(mode="enforce", audit=str(audit_path), cache_config=_config(tmp_path, "memory"))

    async def twice():
        return await _chat(aoa), await _chat(aoa)

    _, again = asyncio.run(twice())
    assert len(openai_server.requests) == 1 and again.choices[0].message.content == "Restart the worker"
    assert [r["action"] for r in _audit(audit_path)] == ["allow", "cache_hit"]


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_observe_mode_records_a_would_be_hit_and_still_sends_the_sdk_call(
        sdk, oa, an, openai_server, anthropic_server, audit_path, tmp_path):
    server, send = (openai_server, lambda: _chat(oa)) if sdk == "openai" else (anthropic_server, lambda: _message(an))
    config = _config(tmp_path)
    server.enqueue(text="Check the pool metrics", usage={"input": 20, "output": 4})
    server.enqueue(text="Check the pool metrics", usage={"input": 20, "output": 4})
    cascadeflow.init(mode="observe", audit=str(audit_path), cache_config=config)
    send()
    send()
    assert len(server.requests) == 2 and server.requests[0].body == server.requests[1].body
    first, second = _audit(audit_path)
    assert first["action"] == second["action"] == "allow" and second["cost_usd"] > 0
    assert second["metadata"]["cache"]["hit"] is False and second["metadata"]["cache"]["would_hit"] is True
    assert second["metadata"]["cache"]["saved_usd"] == pytest.approx(first["cost_usd"])
    stats = open_cache(config).stats()
    assert stats["observed_hits"] == 1 and stats["hits"] == 0


def test_a_different_sampling_option_is_a_different_sdk_cache_entry(oa, openai_server, audit_path, tmp_path):
    openai_server.enqueue(text="cold answer")
    openai_server.enqueue(text="warm answer")
    cascadeflow.init(mode="enforce", audit=str(audit_path), cache_config=_config(tmp_path))
    cold = oa.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, temperature=0)
    warm = oa.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, temperature=0.9, seed=7)
    assert (cold.choices[0].message.content, warm.choices[0].message.content) == ("cold answer", "warm answer")
    assert len(openai_server.requests) == 2


def test_the_parse_helper_with_a_schema_given_as_a_dict_takes_no_cache_step(oa, openai_server, audit_path,
                                                                            tmp_path):
    config = _config(tmp_path)
    for _ in range(2):
        openai_server.enqueue(text='{"cause": "leak"}', usage={"input": 10, "output": 2})
    cascadeflow.init(mode="enforce", audit=str(audit_path), cache_config=config)
    fmt = {"type": "json_schema", "json_schema": {"name": "cause", "schema": {
        "type": "object", "properties": {"cause": {"type": "string"}}, "required": ["cause"],
        "additionalProperties": False}, "strict": True}}
    for _ in range(2):
        oa.chat.completions.parse(model="gpt-4o-mini", messages=QUESTION, response_format=fmt)
    assert len(openai_server.requests) == 2
    assert all("cache" not in r["metadata"] for r in _audit(audit_path))
    assert open_cache(config).stats()["entries"] == 0


def test_an_sdk_answer_with_tool_calls_is_served_with_its_tool_calls_when_configured(
        oa, openai_server, audit_path, tmp_path):
    tool = {"type": "function", "function": {"name": "get_pool", "parameters": {"type": "object",
                                                                              "properties": {}}}}
    openai_server.enqueue(text="", tool_calls=[{"name": "get_pool", "arguments": {"service": "checkout"}}])
    config = CacheConfig(backend="memory", cache_tool_calls=True, key_prefix=f"t{uuid.uuid4().hex}:")
    cascadeflow.init(mode="enforce", audit=str(audit_path), cache_config=config)
    first = _chat(oa, tools=[tool])
    again = _chat(oa, tools=[tool])
    assert len(openai_server.requests) == 1
    call = again.choices[0].message.tool_calls[0]
    assert again.choices[0].finish_reason == "tool_calls" and again.choices[0].message.content is None
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == \
        (first.choices[0].message.tool_calls[0].id, "get_pool", {"service": "checkout"})


def test_without_a_cache_config_sdk_calls_are_never_cached(oa, openai_server, audit_path):
    openai_server.enqueue(text="one")
    openai_server.enqueue(text="two")
    cascadeflow.init(mode="enforce", audit=str(audit_path))
    assert [_chat(oa).choices[0].message.content for _ in range(2)] == ["one", "two"]
    assert all("cache" not in r["metadata"] for r in _audit(audit_path))
