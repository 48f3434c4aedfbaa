"""The official openai and anthropic SDKs work against the loopback hosts: proof the wire formats are real."""

from __future__ import annotations

import anthropic
import openai
import pytest

from loopback import Reply

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def test_openai_chat_completion_with_usage_and_logprobs(oa, openai_server):
    openai_server.enqueue(text="Paris is", logprobs=[("Paris", -0.1, [("Paris", -0.1), ("Lyon", -3.2)]),
                                                     (" is", -0.5)],
                          usage={"input": 11, "output": 2, "cache_read": 4})
    out = oa.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "capital?"}],
                                     logprobs=True, top_logprobs=2)
    assert out.choices[0].message.content == "Paris is"
    assert out.usage.prompt_tokens == 11 and out.usage.prompt_tokens_details.cached_tokens == 4
    assert [t.token for t in out.choices[0].logprobs.content] == ["Paris", " is"]
    assert out.choices[0].logprobs.content[0].top_logprobs[1].token == "Lyon"
    sent = openai_server.requests[0]
    assert sent.path == "/v1/chat/completions" and sent.headers["authorization"] == "Bearer sk-test"
    assert sent.json["top_logprobs"] == 2


def test_openai_chat_stream_assembles_text_tool_calls_and_usage(oa, openai_server):
    openai_server.enqueue(text="Checking now", tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}],
                          usage={"input": 20, "output": 9})
    stream = oa.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "weather?"}],
                                        tools=[WEATHER], stream=True, stream_options={"include_usage": True})
    text, args, usage, finish = [], [], None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            text.append(choice.delta.content or "")
            args += [tc.function.arguments or "" for tc in choice.delta.tool_calls or ()]
            finish = choice.finish_reason or finish
    assert "".join(text) == "Checking now"
    assert "".join(args) == '{"city": "Oslo"}'
    assert finish == "tool_calls" and usage.completion_tokens == 9


def test_openai_error_status_becomes_the_sdk_exception(oa, openai_server):
    openai_server.enqueue(status=429, headers={"retry-after": "3"}, error="slow down")
    with pytest.raises(openai.RateLimitError) as err:
        oa.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert err.value.response.headers["retry-after"] == "3"


def test_openai_responses_create_plain(oa, openai_server):
    openai_server.enqueue(text="Hello there", usage={"input": 7, "output": 2, "reasoning": 1})
    out = oa.responses.create(model="gpt-4o-mini", input="hi")
    assert out.output_text == "Hello there"
    assert out.usage.input_tokens == 7 and out.usage.output_tokens_details.reasoning_tokens == 1
    assert openai_server.requests[0].path == "/v1/responses"


def test_openai_responses_stream_events_and_final_response(oa, openai_server):
    openai_server.enqueue(text="one two three", tool_calls=[{"name": "lookup", "arguments": {"q": "x"}}])
    deltas, final = [], None
    for event in oa.responses.create(model="gpt-4o-mini", input="hi", stream=True):
        if event.type == "response.output_text.delta":
            deltas.append(event.delta)
        if event.type == "response.completed":
            final = event.response
    assert "".join(deltas) == "one two three"
    assert final.output_text == "one two three"
    assert final.output[1].type == "function_call" and final.output[1].arguments == '{"q": "x"}'


def test_anthropic_messages_create_with_tool_use_and_cache_usage(an, anthropic_server):
    anthropic_server.enqueue(text="Let me check", tool_calls=[{"name": "get_weather", "arguments": {"city": "Rome"}}],
                             usage={"input": 10, "output": 5, "cache_read": 90, "cache_write": 3})
    out = an.messages.create(model="claude-3-5-haiku-20241022", max_tokens=100,
                             messages=[{"role": "user", "content": "weather?"}])
    assert out.content[0].text == "Let me check"
    assert out.content[1].type == "tool_use" and out.content[1].input == {"city": "Rome"}
    assert out.stop_reason == "tool_use"
    assert out.usage.cache_read_input_tokens == 90 and out.usage.input_tokens == 10
    sent = anthropic_server.requests[0]
    # This SDK release authenticates with a bearer token; older ones and our adapter send x-api-key.
    assert "sk-ant-test" in (sent.headers.get("x-api-key"), sent.headers.get("authorization", "")[7:])
    assert "anthropic-version" in sent.headers


def test_anthropic_raw_stream_event_sequence(an, anthropic_server):
    anthropic_server.enqueue(text="a b", usage={"input": 3, "output": 2})
    kinds = [e.type for e in an.messages.create(model="claude-3-5-haiku-20241022", max_tokens=10, stream=True,
                                                 messages=[{"role": "user", "content": "hi"}])]
    assert kinds == ["message_start", "content_block_start", "content_block_delta", "content_block_delta",
                     "content_block_stop", "message_delta", "message_stop"]


def test_anthropic_messages_stream_helper_final_message(an, anthropic_server):
    anthropic_server.enqueue(Reply(text="hello world", tool_calls=[{"name": "f", "arguments": {"n": 1}}],
                                   usage={"input": 4, "output": 6}))
    with an.messages.stream(model="claude-3-5-haiku-20241022", max_tokens=10,
                            messages=[{"role": "user", "content": "hi"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "hello world"
    assert final.content[1].input == {"n": 1}
    assert final.usage.output_tokens == 6 and final.stop_reason == "tool_use"


def test_anthropic_error_event_mid_stream_raises_in_the_sdk(an, anthropic_server):
    anthropic_server.enqueue(text="partial", stream_error="Overloaded")
    with pytest.raises(anthropic.APIStatusError, match="Overloaded"):
        list(an.messages.create(model="claude-3-5-haiku-20241022", max_tokens=10, stream=True,
                                messages=[{"role": "user", "content": "hi"}]))


def test_an_unscripted_request_gets_a_clear_400(oa, openai_server):
    with pytest.raises(openai.BadRequestError, match="no reply queued"):
        oa.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])


async def test_async_sdk_clients_work_from_the_test_event_loop(openai_server, anthropic_server):
    openai_server.enqueue(text="async openai")
    anthropic_server.enqueue(text="async anthropic")
    oa = openai.AsyncOpenAI(base_url=openai_server.base_url, api_key="sk-test", max_retries=0)
    an = anthropic.AsyncAnthropic(base_url=anthropic_server.base_url, api_key="sk-ant-test", max_retries=0)
    chunks = [c async for c in await oa.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True)]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "async openai"
    async with an.messages.stream(model="claude-3-5-haiku-20241022", max_tokens=10,
                                  messages=[{"role": "user", "content": "hi"}]) as stream:
        final = await stream.get_final_message()
    assert final.content[0].text == "async anthropic"
    await oa.close()
    await an.close()
