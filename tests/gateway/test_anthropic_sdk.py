"""The official anthropic SDK, sync and async, against the gateway: messages plain and streamed, tool use and
tool results, usage events, and errors in Anthropic's shape."""

from __future__ import annotations

import anthropic
import pytest

TOOL = {"name": "get_weather", "description": "weather of a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


@pytest.fixture
def client(gateway):
    return anthropic.Anthropic(base_url=gateway.url, api_key="anything", max_retries=0)


def test_message_with_tool_use_and_cache_usage(client, anthropic_server):
    anthropic_server.enqueue(text="Let me check", tool_calls=[{"name": "get_weather", "arguments": {"city": "Rome"}}],
                             usage={"input": 10, "output": 5, "cache_read": 90, "cache_write": 3})
    out = client.messages.create(model="claude", max_tokens=100, tools=[TOOL],
                                 messages=[{"role": "user", "content": "weather?"}])
    assert out.content[0].text == "Let me check"
    assert out.content[1].type == "tool_use" and out.content[1].input == {"city": "Rome"}
    assert out.stop_reason == "tool_use"
    assert (out.usage.input_tokens, out.usage.cache_read_input_tokens, out.usage.cache_creation_input_tokens) == (10, 90, 3)
    sent = anthropic_server.requests[0].json
    assert sent["tools"][0]["input_schema"]["required"] == ["city"] and sent["max_tokens"] == 100


def test_tool_result_turn_reaches_the_model(client, anthropic_server):
    anthropic_server.enqueue(text="Sunny in Rome")
    out = client.messages.create(model="claude", max_tokens=50, system="be brief", tools=[TOOL], messages=[
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                           "input": {"city": "Rome"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]}])
    assert out.content[0].text == "Sunny in Rome"
    sent = anthropic_server.requests[0].json
    assert sent["system"] == "be brief"
    assert sent["messages"][1]["content"][0] == {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                                 "input": {"city": "Rome"}}
    assert sent["messages"][2]["content"][0]["type"] == "tool_result"


def test_stream_helper_text_tool_input_and_final_usage(client, anthropic_server):
    anthropic_server.enqueue(text="hello world", tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}],
                             usage={"input": 4, "output": 6})
    with client.messages.stream(model="claude", max_tokens=10, tools=[TOOL],
                                messages=[{"role": "user", "content": "hi"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "hello world"
    assert final.content[1].input == {"city": "Oslo"} and final.stop_reason == "tool_use"
    assert final.usage.output_tokens == 6 and final.usage.input_tokens == 4


def test_raw_event_sequence(client, anthropic_server):
    anthropic_server.enqueue(text="a b", usage={"input": 3, "output": 2})
    kinds = [e.type for e in client.messages.create(model="claude", max_tokens=10, stream=True,
                                                    messages=[{"role": "user", "content": "hi"}])]
    assert kinds == ["message_start", "content_block_start", "content_block_delta", "content_block_delta",
                     "content_block_stop", "message_delta", "message_stop"]


def test_openai_host_answers_an_anthropic_client(client, openai_server):
    openai_server.enqueue(text="from the OpenAI host", usage={"input": 5, "output": 4})
    out = client.messages.create(model="fast", max_tokens=20, messages=[{"role": "user", "content": "hi"}])
    assert out.content[0].text == "from the OpenAI host" and out.usage.output_tokens == 4


def test_missing_max_tokens_is_a_400_in_anthropic_shape(gateway, anthropic_server):
    import httpx

    reply = httpx.post(gateway.url + "/v1/messages", json={"model": "claude", "messages": [
        {"role": "user", "content": "hi"}]})
    assert reply.status_code == 400
    assert reply.json()["type"] == "error" and reply.json()["error"]["type"] == "invalid_request_error"
    assert anthropic_server.requests == []


async def test_async_client_stream(gateway, anthropic_server):
    anthropic_server.enqueue(text="async anthropic")
    async with anthropic.AsyncAnthropic(base_url=gateway.url, api_key="x", max_retries=0) as client, \
            client.messages.stream(model="claude", max_tokens=10,
                                   messages=[{"role": "user", "content": "hi"}]) as stream:
        final = await stream.get_final_message()
    assert final.content[0].text == "async anthropic"
