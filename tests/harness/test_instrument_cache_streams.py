"""Streamed and raw SDK calls take the cache step: a stream's answer is stored when it ends, and a repeated
stream is replayed from the cache as the SDK's own event objects with the usage in its last event; a
`with_raw_response` call gets the stored body as an HTTP response whose parse() is the SDK's model. Real
openai and anthropic SDKs against the loopback hosts, in enforce mode (observe mode never serves)."""

from __future__ import annotations

import asyncio
import json
import uuid

import anthropic
import openai
import pydantic
import pytest
from anthropic.types import RawMessageStreamEvent
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ParsedChatCompletion
from openai.types.responses import Response as OpenAIResponse
from pydantic import TypeAdapter

import cascadeflow
from cascadeflow import CacheConfig
from cascadeflow.cache import open_cache

QUESTION = [{"role": "user", "content": "Why is the checkout pool exhausted?"}]
ANSWER = "Connections leak in the retry path of the new release"


def _config() -> CacheConfig:
    return CacheConfig(backend="memory", key_prefix=f"t{uuid.uuid4().hex}:")


def _audit(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _chat(client, **kw):
    return client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, temperature=0, **kw)


def _message(client, **kw):
    return client.messages.create(model="claude-3-5-haiku-latest", max_tokens=200, messages=QUESTION, **kw)


def _chat_text(chunks) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_a_repeated_openai_stream_is_replayed_from_the_cache_as_chunks_with_usage_last(
        oa, openai_server, audit_path):
    config = _config()
    openai_server.enqueue(text=ANSWER, usage={"input": 40, "output": 9})
    cascadeflow.init(mode="enforce", audit=str(audit_path), cache_config=config)
    first = list(_chat(oa, stream=True))
    with _chat(oa, stream=True) as stream:
        again = list(stream)
    assert len(openai_server.requests) == 1
    assert all(isinstance(c, ChatCompletionChunk) for c in again)
    assert _chat_text(again) == _chat_text(first) == ANSWER
    assert again[-1].choices[0].finish_reason == "stop"
    assert (again[-1].usage.prompt_tokens, again[-1].usage.completion_tokens) == (40, 9)
    assert all(c.usage is None for c in again[:-1])
    assert stream.response.headers["x-cascadeflow-cache"] == "hit"
    paid, hit = _audit(audit_path)
    assert paid["cost_usd"] > 0 and paid["metadata"]["cache"] == {"hit": False}
    assert hit["action"] == "cache_hit" and hit["cost_usd"] == 0
    assert hit["metadata"]["cache"]["saved_usd"] == pytest.approx(paid["cost_usd"])
    assert open_cache(config).stats()["stores"] == 1


def test_asked_for_usage_a_replayed_stream_ends_with_a_usage_chunk_as_the_api_sends_it(oa, openai_server):
    openai_server.enqueue(text=ANSWER, usage={"input": 40, "output": 9})
    cascadeflow.init(mode="enforce", audit=False, cache_config=_config())
    list(_chat(oa, stream=True))
    again = list(_chat(oa, stream=True, stream_options={"include_usage": True}))
    assert len(openai_server.requests) == 1  # how the usage is delivered is not part of the question
    assert again[-1].choices == [] and again[-1].usage.total_tokens == 49
    assert again[-2].choices[0].finish_reason == "stop" and again[-2].usage is None


def test_a_plain_answer_serves_a_stream_and_a_stream_serves_a_plain_call(oa, openai_server):
    openai_server.enqueue(text=ANSWER, usage={"input": 40, "output": 9})
    cascadeflow.init(mode="enforce", audit=False, cache_config=_config())
    plain = _chat(oa)
    streamed = list(_chat(oa, stream=True))
    assert _chat_text(streamed) == plain.choices[0].message.content and len(openai_server.requests) == 1


def test_an_async_openai_stream_is_replayed_too(openai_server, audit_path):
    aoa = openai.AsyncOpenAI(base_url=openai_server.base_url, api_key="sk-test", max_retries=0)
    openai_server.enqueue(text=ANSWER, usage={"input": 12, "output": 3})
    cascadeflow.init(mode="enforce", audit=str(audit_path), cache_config=_config())

    async def twice():
        chunks = []
        for _ in range(2):
            async with await _chat(aoa, stream=True) as stream:
                chunks.append([c async for c in stream])
        return chunks

    first, again = asyncio.run(twice())
    assert len(openai_server.requests) == 1 and _chat_text(again) == _chat_text(first) == ANSWER
    assert [r["action"] for r in _audit(audit_path)] == ["allow", "cache_hit"]


def test_a_cut_off_stream_is_not_stored(oa, openai_server):
    config = _config()
    openai_server.enqueue(text=ANSWER, end_after=2)
    openai_server.enqueue(text=ANSWER, usage={"input": 40, "output": 9})
    cascadeflow.init(mode="enforce", audit=False, cache_config=config)
    list(_chat(oa, stream=True))
    assert _chat_text(list(_chat(oa, stream=True))) == ANSWER
    assert len(openai_server.requests) == 2 and open_cache(config).stats()["stores"] == 1


def test_a_streamed_tool_call_is_replayed_with_its_arguments(oa, openai_server):
    tool = {"type": "function", "function": {"name": "get_pool", "parameters": {"type": "object",
                                                                              "properties": {}}}}
    openai_server.enqueue(text="", tool_calls=[{"name": "get_pool", "arguments": {"service": "checkout"}}])
    cascadeflow.init(mode="enforce", audit=False, cache_config=CacheConfig(
        backend="memory", cache_tool_calls=True, key_prefix=f"t{uuid.uuid4().hex}:"))
    _chat(oa, tools=[tool])
    again = list(_chat(oa, tools=[tool], stream=True))
    call = again[0].choices[0].delta.tool_calls[0]
    assert len(openai_server.requests) == 1 and again[-1].choices[0].finish_reason == "tool_calls"
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_pool", {"service": "checkout"})


def test_a_raw_openai_response_is_served_with_the_stored_body(oa, openai_server, audit_path):
    openai_server.enqueue(text=ANSWER, usage={"input": 40, "output": 9})
    cascadeflow.init(mode="enforce", audit=str(audit_path), cache_config=_config())
    first = oa.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=QUESTION)
    again = oa.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=QUESTION)
    assert len(openai_server.requests) == 1
    assert again.status_code == 200 and again.headers["x-cascadeflow-cache"] == "hit"
    completion = again.parse()
    assert isinstance(completion, ChatCompletion) and completion.choices[0].message.content == ANSWER
    assert ChatCompletion.model_validate(again.http_response.json()) == completion
    assert first.parse().choices[0].message.content == ANSWER
    assert [r["action"] for r in _audit(audit_path)] == ["allow", "cache_hit"]


def test_a_raw_streamed_openai_response_parses_to_the_replayed_stream(oa, openai_server):
    openai_server.enqueue(text=ANSWER, usage={"input": 40, "output": 9})
    cascadeflow.init(mode="enforce", audit=False, cache_config=_config())
    list(_chat(oa, stream=True))
    raw = oa.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=QUESTION, temperature=0,
                                                       stream=True)
    assert raw.headers["content-type"] == "text/event-stream"
    assert _chat_text(list(raw.parse())) == ANSWER and len(openai_server.requests) == 1
    payloads = [line[6:] for line in raw.text.splitlines() if line.startswith("data: ")]
    assert payloads[-1] == "[DONE]" and json.loads(payloads[-2])["usage"]["completion_tokens"] == 9


def _events_text(events) -> str:
    return "".join(e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta")


def test_a_repeated_anthropic_stream_is_replayed_as_raw_message_events(an, anthropic_server, audit_path):
    anthropic_server.enqueue(text=ANSWER, usage={"input": 30, "output": 5, "cache_read": 10})
    cascadeflow.init(mode="enforce", audit=str(audit_path), cache_config=_config())
    first = list(_message(an, stream=True))
    again = list(_message(an, stream=True))
    assert len(anthropic_server.requests) == 1
    adapter = TypeAdapter(RawMessageStreamEvent)
    assert [adapter.validate_python(e.model_dump()) == e for e in again] == [True] * len(again)
    assert [e.type for e in again] == ["message_start", "content_block_start", "content_block_delta",
                                       "content_block_stop", "message_delta", "message_stop"]
    assert _events_text(again) == _events_text(first) == ANSWER
    delta = again[-2]
    assert delta.delta.stop_reason == "end_turn" and delta.usage.output_tokens == 5
    assert (delta.usage.input_tokens, delta.usage.cache_read_input_tokens) == (30, 10)
    assert [r["action"] for r in _audit(audit_path)] == ["allow", "cache_hit"]


def test_an_async_raw_anthropic_response_parses_in_a_coroutine(anthropic_server):
    aan = anthropic.AsyncAnthropic(base_url=anthropic_server.base_url, api_key="sk-ant-test", max_retries=0)
    anthropic_server.enqueue(text=ANSWER, usage={"input": 30, "output": 5})
    cascadeflow.init(mode="enforce", audit=False, cache_config=_config())

    async def twice():
        out = []
        for _ in range(2):
            raw = await aan.messages.with_raw_response.create(model="claude-3-5-haiku-latest", max_tokens=200,
                                                              messages=QUESTION)
            out.append((raw, await raw.parse()))
        return out

    (_, first), (raw, again) = asyncio.run(twice())
    assert len(anthropic_server.requests) == 1 and again.content[0].text == first.content[0].text == ANSWER
    assert isinstance(again, anthropic.types.Message) and raw.headers["x-cascadeflow-cache"] == "hit"


def test_a_message_stream_helper_answer_is_stored_and_served_to_a_repeated_helper_stream(an, anthropic_server,
                                                                                        audit_path):
    anthropic_server.enqueue(text=ANSWER, usage={"input": 30, "output": 5})
    cascadeflow.init(mode="enforce", audit=str(audit_path), cache_config=_config())
    with an.messages.stream(model="claude-3-5-haiku-latest", max_tokens=200, messages=QUESTION) as stream:
        first = stream.get_final_text()
    with an.messages.stream(model="claude-3-5-haiku-latest", max_tokens=200, messages=QUESTION) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert len(anthropic_server.requests) == 1 and text == first == ANSWER
    assert final.usage.output_tokens == 5 and final.stop_reason == "end_turn"
    assert [r["action"] for r in _audit(audit_path)] == ["allow", "cache_hit"]


def test_observe_mode_never_replays_a_stream(oa, openai_server, audit_path):
    config = _config()
    openai_server.enqueue(text=ANSWER, usage={"input": 40, "output": 9})
    openai_server.enqueue(text=ANSWER, usage={"input": 40, "output": 9})
    cascadeflow.init(mode="observe", audit=str(audit_path), cache_config=config)
    list(_chat(oa, stream=True, stream_options={"include_usage": True}))
    list(_chat(oa, stream=True, stream_options={"include_usage": True}))
    assert len(openai_server.requests) == 2
    assert _audit(audit_path)[1]["metadata"]["cache"]["would_hit"] is True


def test_an_async_message_stream_helper_is_served_from_the_cache_too(anthropic_server):
    aan = anthropic.AsyncAnthropic(base_url=anthropic_server.base_url, api_key="sk-ant-test", max_retries=0)
    anthropic_server.enqueue(text=ANSWER, usage={"input": 30, "output": 5})
    cascadeflow.init(mode="enforce", audit=False, cache_config=_config())

    async def twice():
        texts = []
        for _ in range(2):
            async with aan.messages.stream(model="claude-3-5-haiku-latest", max_tokens=200,
                                           messages=QUESTION) as stream:
                texts.append("".join([t async for t in stream.text_stream]))
        return texts

    assert asyncio.run(twice()) == [ANSWER, ANSWER] and len(anthropic_server.requests) == 1


class Cause(pydantic.BaseModel):
    service: str
    reason: str


def test_the_parse_helper_is_served_parsed_into_the_callers_model(oa, openai_server, audit_path):
    openai_server.enqueue(text='{"service": "checkout", "reason": "pool leak"}', usage={"input": 30, "output": 12})
    cascadeflow.init(mode="enforce", audit=str(audit_path), cache_config=_config())
    first = oa.chat.completions.parse(model="gpt-4o-mini", messages=QUESTION, response_format=Cause)
    again = oa.chat.completions.parse(model="gpt-4o-mini", messages=QUESTION, response_format=Cause)
    assert len(openai_server.requests) == 1
    assert isinstance(again, ParsedChatCompletion)
    assert again.choices[0].message.parsed == first.choices[0].message.parsed == Cause(service="checkout",
                                                                                      reason="pool leak")
    assert [r["action"] for r in _audit(audit_path)] == ["allow", "cache_hit"]


def test_another_response_model_is_another_question(oa, openai_server):
    class Other(pydantic.BaseModel):
        service: str

    openai_server.enqueue(text='{"service": "checkout", "reason": "pool leak"}')
    openai_server.enqueue(text='{"service": "checkout"}')
    cascadeflow.init(mode="enforce", audit=False, cache_config=_config())
    oa.chat.completions.parse(model="gpt-4o-mini", messages=QUESTION, response_format=Cause)
    other = oa.chat.completions.parse(model="gpt-4o-mini", messages=QUESTION, response_format=Other)
    assert len(openai_server.requests) == 2 and other.choices[0].message.parsed == Other(service="checkout")


def _respond(client, **kw):
    return client.responses.create(model="gpt-4o-mini", input="Why is the checkout pool exhausted?",
                                   instructions="be brief", **kw)


def test_a_responses_call_that_stores_nothing_on_the_server_is_served_plain_and_streamed(
        oa, openai_server, audit_path):
    openai_server.enqueue(text=ANSWER, usage={"input": 25, "output": 9})
    cascadeflow.init(mode="enforce", audit=str(audit_path), cache_config=_config())
    first = _respond(oa, store=False)
    again = _respond(oa, store=False)
    events = list(_respond(oa, store=False, stream=True))
    assert len(openai_server.requests) == 1
    assert isinstance(again, OpenAIResponse) and again.output_text == first.output_text == ANSWER
    assert (again.usage.input_tokens, again.usage.output_tokens) == (25, 9)
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == ANSWER
    assert events[-1].response.usage.output_tokens == 9
    assert [r["action"] for r in _audit(audit_path)] == ["allow", "cache_hit", "cache_hit"]


def test_a_responses_call_kept_on_the_server_takes_no_cache_step(oa, openai_server, audit_path):
    for _ in range(2):
        openai_server.enqueue(text=ANSWER, usage={"input": 25, "output": 9})
    cascadeflow.init(mode="enforce", audit=str(audit_path), cache_config=_config())
    _respond(oa)
    _respond(oa)
    assert len(openai_server.requests) == 2 and all("cache" not in r["metadata"] for r in _audit(audit_path))


def test_a_lazily_read_response_is_served_with_the_stored_body(oa, openai_server):
    openai_server.enqueue(text=ANSWER, usage={"input": 40, "output": 9})
    cascadeflow.init(mode="enforce", audit=False, cache_config=_config())
    with oa.chat.completions.with_streaming_response.create(model="gpt-4o-mini", messages=QUESTION) as first:
        first_body = first.json()
    with oa.chat.completions.with_streaming_response.create(model="gpt-4o-mini", messages=QUESTION) as again:
        lines = list(again.iter_lines())
        completion = again.parse()
    assert len(openai_server.requests) == 1 and again.headers["x-cascadeflow-cache"] == "hit"
    assert json.loads("".join(lines))["choices"][0]["message"]["content"] == ANSWER
    assert completion.choices[0].message.content == first_body["choices"][0]["message"]["content"]


def test_an_async_lazily_read_stream_is_served_as_the_replayed_stream(anthropic_server):
    aan = anthropic.AsyncAnthropic(base_url=anthropic_server.base_url, api_key="sk-ant-test", max_retries=0)
    anthropic_server.enqueue(text=ANSWER, usage={"input": 30, "output": 5})
    cascadeflow.init(mode="enforce", audit=False, cache_config=_config())

    async def twice():
        texts = []
        for _ in range(2):
            async with aan.messages.with_streaming_response.create(
                    model="claude-3-5-haiku-latest", max_tokens=200, messages=QUESTION, stream=True) as raw:
                texts.append(_events_text([e async for e in await raw.parse()]))
        return texts

    assert asyncio.run(twice()) == [ANSWER, ANSWER] and len(anthropic_server.requests) == 1


def test_the_chat_stream_helper_reads_a_replayed_stream_like_a_live_one(oa, openai_server):
    openai_server.enqueue(text=ANSWER, usage={"input": 40, "output": 9})
    cascadeflow.init(mode="enforce", audit=False, cache_config=_config())
    _chat(oa)
    with oa.chat.completions.stream(model="gpt-4o-mini", messages=QUESTION, temperature=0) as stream:
        deltas = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()
    assert len(openai_server.requests) == 1 and "".join(deltas) == ANSWER
    assert final.choices[0].message.content == ANSWER and final.usage.completion_tokens == 9


def test_an_observed_stream_without_usage_is_not_stored(oa, openai_server):
    config = _config()
    openai_server.enqueue(text=ANSWER, usage={"input": 40, "output": 9})
    cascadeflow.init(mode="observe", audit=False, cache_config=config)
    list(_chat(oa, stream=True))  # observe mode sends it as asked: no usage chunk, the usage is estimated
    assert open_cache(config).stats()["stores"] == 0
