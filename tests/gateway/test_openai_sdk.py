"""The official openai SDK, sync and async, against the gateway: chat completions plain and streamed, tools
and tool results, usage in the final chunk, the Responses API, /v1/models; each call audited once."""

from __future__ import annotations

import json

import openai
import pytest

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def audit(tmp_path) -> list[dict]:
    path = tmp_path / "gateway-audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def client(gateway):
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="anything", max_retries=0)


def test_chat_completion_answers_through_the_pipeline(client, openai_server, tmp_path):
    openai_server.enqueue(text="Paris", usage={"input": 12, "output": 1})
    raw = client.chat.completions.with_raw_response.create(
        model="fast", messages=[{"role": "user", "content": "capital of France?"}])
    out = raw.parse()
    assert out.choices[0].message.content == "Paris"
    assert out.usage.prompt_tokens == 12 and out.usage.completion_tokens == 1
    assert out.model == "openai/gpt-4o-mini"
    assert raw.headers["x-cascadeflow-model"] == "openai/gpt-4o-mini"
    assert raw.headers["x-cascadeflow-served-as"] == "fast"
    assert openai_server.requests[0].headers["authorization"] == "Bearer sk-upstream-openai"
    [record] = audit(tmp_path)
    assert record["model_selected"] == "openai/gpt-4o-mini" and record["metadata"]["gateway_model"] == "fast"
    assert record["cost_usd"] == pytest.approx((12 * 1.0 + 1 * 2.0) / 1e6)
    assert record["request_id"] == raw.headers["x-cascadeflow-request-id"]


def test_alias_resolves_to_its_target(client, openai_server):
    openai_server.enqueue(text="hi")
    out = client.chat.completions.create(model="quick", messages=[{"role": "user", "content": "hi"}])
    assert out.model == "openai/gpt-4o-mini"
    assert openai_server.requests[0].json["model"] == "gpt-4o-mini"


def test_stream_with_tool_call_deltas_finish_reason_and_usage_chunk(client, openai_server, tmp_path):
    openai_server.enqueue(text="Checking now", tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}],
                          usage={"input": 20, "output": 9})
    stream = client.chat.completions.create(model="fast", messages=[{"role": "user", "content": "weather?"}],
                                            tools=[WEATHER], stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert {c.id for c in chunks} == {f"chatcmpl-{stream.response.headers['x-cascadeflow-stream-id']}"}
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    args = "".join(tc.function.arguments or "" for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or ())
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert text == "Checking now" and json.loads(args) == {"city": "Oslo"}
    assert finishes == ["tool_calls"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 9
    [record] = audit(tmp_path)
    assert record["output_tokens"] == 9 and record["action"] == "allow"
    assert record["metadata"]["stream_id"] == stream.response.headers["x-cascadeflow-stream-id"]


def test_stream_without_include_usage_has_no_usage_chunk(client, openai_server):
    openai_server.enqueue(text="a b c")
    chunks = list(client.chat.completions.create(model="fast", messages=[{"role": "user", "content": "hi"}],
                                                 stream=True))
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_tool_results_reach_the_model_as_tool_messages(client, openai_server):
    openai_server.enqueue(text="It is sunny in Oslo")
    messages = [{"role": "user", "content": "weather?"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather",
                                                                      "arguments": "{\"city\": \"Oslo\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]
    out = client.chat.completions.create(model="fast", messages=messages, tools=[WEATHER])
    assert out.choices[0].message.content == "It is sunny in Oslo"
    sent = openai_server.requests[0].json["messages"]
    assert sent[1]["tool_calls"][0]["id"] == "call_1" and sent[2] == {"role": "tool", "content": "sunny",
                                                                       "tool_call_id": "call_1"}


def test_router_picks_by_metadata_and_the_record_says_why(client, openai_server, anthropic_server, tmp_path):
    anthropic_server.enqueue(text="paging on-call")
    out = client.chat.completions.create(model="oncall", messages=[{"role": "user", "content": "db down"}],
                                         metadata={"severity": "P0"})
    assert out.model == "anthropic/claude-3-5-haiku-20241022"
    [record] = audit(tmp_path)
    assert record["routing_reason"] == "severity=P0"


def test_cascade_model_answers_with_its_accepted_tier(client, openai_server, tmp_path):
    openai_server.default = None
    openai_server.enqueue(text="The answer is 42 because six times seven is forty-two.")
    openai_server.enqueue(text="42, since 6 x 7 = 42.")
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "what is six times seven?"}])
    assert raw.parse().choices[0].message.content
    [record] = audit(tmp_path)
    assert record["model_selected"] == raw.headers["x-cascadeflow-model"]
    assert record["tiers"][0]["model"] == "openai/gpt-4o-mini"


def test_models_lists_the_configured_names(client):
    names = {m.id for m in client.models.list()}
    assert names == {"fast", "quick", "claude", "oncall", "auto"}


def test_responses_api_plain_and_streamed(client, openai_server):
    openai_server.enqueue(text="Hello there", usage={"input": 7, "output": 2})
    out = client.responses.create(model="fast", input="hi", instructions="be brief")
    assert out.output_text == "Hello there" and out.usage.input_tokens == 7
    assert openai_server.requests[0].json["messages"][0] == {"role": "system", "content": "be brief"}
    openai_server.enqueue(text="one two", tool_calls=[{"name": "lookup", "arguments": {"q": "x"}}])
    events = list(client.responses.create(model="fast", input="hi", stream=True, tools=[
        {"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}}]))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response
    assert deltas == "one two" and final.output_text == "one two"
    assert final.output[1].type == "function_call" and json.loads(final.output[1].arguments) == {"q": "x"}


async def test_async_client_plain_and_streamed(gateway, openai_server):
    openai_server.enqueue(text="async plain")
    openai_server.enqueue(text="async streamed")
    async with openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0) as client:
        out = await client.chat.completions.create(model="fast", messages=[{"role": "user", "content": "hi"}])
        chunks = [c async for c in await client.chat.completions.create(
            model="fast", messages=[{"role": "user", "content": "hi"}], stream=True)]
    assert out.choices[0].message.content == "async plain"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "async streamed"


def test_a_repeated_call_is_served_from_the_cache(gateway_factory, openai_server):
    server = gateway_factory(cache={"ttl": 60})
    openai_server.enqueue(text="cached answer", usage={"input": 5, "output": 2})
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0)
    ask = {"model": "fast", "messages": [{"role": "user", "content": "what is a cache?"}]}
    first = client.chat.completions.with_raw_response.create(**ask)
    second = client.chat.completions.with_raw_response.create(**ask)
    assert second.parse().choices[0].message.content == "cached answer"
    assert (first.headers["x-cascadeflow-cache"], second.headers["x-cascadeflow-cache"]) == ("miss", "hit")
    assert float(second.headers["x-cascadeflow-cost-usd"]) == 0 and len(openai_server.requests) == 1
