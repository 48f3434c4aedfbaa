"""The exact cache key changes with everything that can change an answer and with nothing else; the
semantic scope ignores only the last user message's text."""

from __future__ import annotations

import pytest

from cascadeflow.cache.key import Uncacheable, cache_keys, canonical_json, route_facts, salient_literals
from cascadeflow.cascade.quality import QualityConfig
from cascadeflow.messages import Message, ToolCall, build_request
from cascadeflow.models import ModelConfig

CHEAP = ModelConfig("gpt-4o-mini", provider="openai")
TOP = ModelConfig("gpt-4o", provider="openai")
TOOL = {"name": "get_metrics", "description": "Read a metric",
        "parameters": {"type": "object", "properties": {"service": {"type": "string"}, "window": {"type": "string"}}}}
BASE = {
    "messages": [{"role": "system", "content": "You are an SRE assistant."},
                 {"role": "user", "content": "Why is checkout returning 500s?", "name": "oncall"}],
    "temperature": 0.2, "max_tokens": 200, "tools": [TOOL], "tool_choice": "auto",
    "response_format": {"type": "json_object"}, "seed": 7, "stop": ["END"],
}


def keys_of(overrides=None, *, tiers=(CHEAP,), quality=None, scope=None, drop=()):
    args = {**BASE, **(overrides or {})}
    for name in drop:
        args.pop(name)
    messages = args.pop("messages")
    request = build_request(messages, **args)
    return cache_keys(request, route_facts(tiers, quality), scope or {})


BASE_KEYS = keys_of()

CHANGES = {
    "system prompt": {"messages": [{"role": "system", "content": "You are a DBA."}, BASE["messages"][1]]},
    "user text": {"messages": [BASE["messages"][0], {**BASE["messages"][1], "content": "Why is cart down?"}]},
    "user name": {"messages": [BASE["messages"][0], {**BASE["messages"][1], "name": "alice"}]},
    "role": {"messages": [{"role": "user", "content": "You are an SRE assistant."}, BASE["messages"][1]]},
    "earlier turn": {"messages": [BASE["messages"][0], {"role": "user", "content": "hi"},
                                  {"role": "assistant", "content": "hello"}, BASE["messages"][1]]},
    "temperature": {"temperature": 0.3},
    "max tokens": {"max_tokens": 201},
    "tool description": {"tools": [{**TOOL, "description": "Read a metric series"}]},
    "tool parameters": {"tools": [{**TOOL, "parameters": {"type": "object", "properties": {}}}]},
    "tool choice": {"tool_choice": "required"},
    "response format": {"response_format": {"type": "text"}},
    "seed": {"seed": 8},
    "stop": {"stop": ["STOP"]},
    "provider option": {"reasoning_effort": "high"},
    "top_p": {"top_p": 0.9},
    "logprobs": {"logprobs": True},
}


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_changing_an_answer_relevant_field_changes_the_exact_key(name):
    assert keys_of(CHANGES[name]).exact != BASE_KEYS.exact


@pytest.mark.parametrize("name", ["temperature", "seed", "tools", "tool_choice", "response_format", "max_tokens"])
def test_leaving_a_field_out_changes_the_exact_key(name):
    assert keys_of(drop=[name]).exact != BASE_KEYS.exact


def test_the_route_model_endpoint_options_and_acceptance_bar_change_the_key():
    other_model = keys_of(tiers=(TOP,))
    other_host = keys_of(tiers=(ModelConfig("gpt-4o-mini", provider="openai", base_url="http://proxy:8000/v1"),))
    cascade = keys_of(tiers=(CHEAP, TOP))
    stricter = keys_of(tiers=(CHEAP, TOP), quality=QualityConfig(threshold=0.9))
    looser = keys_of(tiers=(CHEAP, TOP), quality=QualityConfig(threshold=0.5))
    keys = {BASE_KEYS.exact, other_model.exact, other_host.exact, cascade.exact, stricter.exact, looser.exact}
    assert len(keys) == 6


def test_the_scope_changes_the_key():
    assert keys_of(scope={"user": "alice"}).exact != keys_of(scope={"user": "bob"}).exact != BASE_KEYS.exact


def test_reordering_keys_of_the_same_arguments_keeps_the_key():
    tool = {"parameters": {"properties": {"window": {"type": "string"}, "service": {"type": "string"}},
                           "type": "object"}, "description": "Read a metric", "name": "get_metrics"}
    reordered = {"messages": [{"content": "You are an SRE assistant.", "role": "system"},
                              {"name": "oncall", "content": "Why is checkout returning 500s?", "role": "user"}],
                 "tools": [tool], "response_format": {"type": "json_object"}}
    assert keys_of(reordered).exact == BASE_KEYS.exact
    assert keys_of(scope={"tenant": "a", "user": "b"}).exact == keys_of(scope={"user": "b", "tenant": "a"}).exact


def test_metadata_and_timeout_do_not_change_the_key():
    assert keys_of({"metadata": {"alert_id": "INC-1"}, "timeout": 5.0}).exact == BASE_KEYS.exact


def test_an_integral_temperature_keys_like_its_float():
    assert keys_of({"temperature": 1}).exact == keys_of({"temperature": 1.0}).exact


def reword(text: str) -> dict:
    return {"messages": [BASE["messages"][0], {**BASE["messages"][1], "content": text}]}


def test_the_semantic_scope_ignores_only_the_wording_of_the_last_user_message():
    reworded = keys_of(reword("What makes checkout return 500s?"))
    assert reworded.semantic_scope == BASE_KEYS.semantic_scope and reworded.exact != BASE_KEYS.exact
    assert reworded.last_user_text == "What makes checkout return 500s?"
    for name in ("system prompt", "user name", "temperature", "seed", "tool choice", "earlier turn"):
        assert keys_of(CHANGES[name]).semantic_scope != BASE_KEYS.semantic_scope, name


@pytest.mark.parametrize("text", [
    "Why is checkout returning 502s?",  # another number
    "Why is checkout-v2 returning 500s?",  # an identifier
    "Why is checkout not returning 500s?",  # negation
    "Why is checkout returning more than 500 errors?",  # a comparison
    "Why was checkout returning 500s for an hour?",  # a time unit
])
def test_the_semantic_scope_keeps_the_literals_of_the_last_user_message(text):
    assert keys_of(reword(text)).semantic_scope != BASE_KEYS.semantic_scope


def test_salient_literals():
    assert salient_literals("Did db-1 not exceed 95% over the last 24 hours?") == [
        "1", "24", "95", "db-1", "direction:up", "negated", "unit:hour"]
    assert salient_literals("Which pods are ready?") == []
    assert salient_literals("p99 latency of search") == ["99", "p99"]


def test_tool_calls_and_results_in_the_history_are_part_of_the_key():
    call = ToolCall(id="c1", name="get_metrics", arguments='{"service": "checkout"}')
    history = [Message.user("check checkout"), Message.assistant(None, [call]), Message.tool("c1", "p99=2s")]
    other = [Message.user("check checkout"), Message.assistant(None, [call]), Message.tool("c1", "p99=3s")]
    assert cache_keys(build_request(history), route_facts((CHEAP,)), {}).exact != \
        cache_keys(build_request(other), route_facts((CHEAP,)), {}).exact


def test_a_value_json_cannot_express_makes_the_request_uncacheable():
    with pytest.raises(Uncacheable):
        keys_of({"seed": object()})
    with pytest.raises(Uncacheable):
        keys_of({"extra_body": {"bias": float("nan")}})


def test_a_local_model_path_is_keyed_by_its_text():
    from pathlib import Path

    local = ModelConfig("smollm2", provider="local", extra={"model_path": Path("/models/a.gguf")})
    other = ModelConfig("smollm2", provider="local", extra={"model_path": Path("/models/b.gguf")})
    same = ModelConfig("smollm2", provider="local", extra={"model_path": "/models/a.gguf"})
    assert keys_of(tiers=(local,)).exact == keys_of(tiers=(same,)).exact != keys_of(tiers=(other,)).exact


def test_canonical_json_sorts_keys_and_drops_whitespace():
    assert canonical_json({"b": 1, "a": [1, {"d": 2, "c": 3}]}) == '{"a":[1,{"c":3,"d":2}],"b":1}'
