"""AnthropicMessages against the loopback Messages host: body shape, answers, SSE events, usage, errors."""

from __future__ import annotations

import asyncio
import logging

import pytest
from loopback import RecordedSleep

from cascadeflow.errors import (
    AuthenticationError,
    ContextWindowExceededError,
    InvalidRequestError,
    MalformedResponseError,
    MissingAPIKeyError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
)
from cascadeflow.messages import (
    ImagePart,
    Message,
    StreamDone,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
    build_request,
)
from cascadeflow.models import ModelConfig
from cascadeflow.providers.anthropic import AnthropicMessages
from cascadeflow.providers.http import CircuitBreakers, HttpOptions, RetryPolicy, Timeouts

FAKE_KEY = "sk-ant-LEAKCHECK-fedcba9876543210"
MODEL = "claude-3-5-haiku-20241022"
WEATHER = {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


@pytest.fixture
def sleep():
    return RecordedSleep()


@pytest.fixture
def claude(anthropic_server, sleep):
    return AnthropicMessages(base_url=anthropic_server.base_url, api_key=FAKE_KEY,
                             http=HttpOptions(sleep=sleep, breakers=CircuitBreakers()))


def ask(text="Summarise the incident.", **kw):
    return build_request(text, model=MODEL, **kw)


async def collect(stream):
    return [event async for event in stream]


async def test_plain_answer_with_headers_and_required_max_tokens(claude, anthropic_server):
    anthropic_server.enqueue(text="Disk full on db-1.", usage={"input": 20, "output": 6})
    response = await claude.complete(ask(max_tokens=300))
    assert response.content == "Disk full on db-1." and response.finish_reason == "stop"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (20, 6)
    assert response.request_id == "req_loopback" and response.logprobs is None
    sent = anthropic_server.requests[0]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == FAKE_KEY and sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.json["max_tokens"] == 300


async def test_max_tokens_defaults_when_the_request_sets_none(claude, anthropic_server):
    anthropic_server.enqueue(text="ok")
    await claude.complete(ask())
    assert anthropic_server.requests[0].json["max_tokens"] == 4096


async def test_system_is_split_out_and_tool_turns_become_blocks(claude, anthropic_server):
    anthropic_server.enqueue(text="done")
    messages = [Message.system("You are an SRE."), Message.system("Be brief."),
                Message.user([TextPart("what is this?"), ImagePart("data:image/png;base64,iVBORw0KGgo=")]),
                Message.assistant("checking", [ToolCall("toolu_1", "get_weather", '{"city": "Oslo"}')]),
                Message.tool("toolu_1", "rain"), Message.user("and tomorrow?")]
    await claude.complete(build_request(messages, model=MODEL, tools=[WEATHER], tool_choice="required",
                                        stop=["END"]))
    body = anthropic_server.requests[0].json
    assert body["system"] == "You are an SRE.\n\nBe brief."
    assert [t["role"] for t in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][0]["content"][1] == {
        "type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    assert body["messages"][1]["content"][1] == {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                                 "input": {"city": "Oslo"}}
    assert body["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "rain"},
                                              {"type": "text", "text": "and tomorrow?"}]
    assert body["tools"][0]["input_schema"]["properties"] == {"city": {"type": "string"}}
    assert body["tool_choice"] == {"type": "any"} and body["stop_sequences"] == ["END"]


async def test_tool_use_blocks_become_tool_calls(claude, anthropic_server):
    anthropic_server.enqueue(text="Let me look.", tool_calls=[{"id": "toolu_7", "name": "get_weather",
                                                               "arguments": {"city": "Rome"}}])
    response = await claude.complete(ask(tools=[WEATHER]))
    assert response.content == "Let me look."
    assert response.tool_calls == (ToolCall("toolu_7", "get_weather", '{"city": "Rome"}'),)
    assert response.finish_reason == "tool_calls" and response.raw_finish_reason == "tool_use"


async def test_cache_tokens_are_included_in_input_tokens(claude, anthropic_server):
    anthropic_server.enqueue(text="x", usage={"input": 10, "output": 3, "cache_read": 900, "cache_write": 50})
    usage = (await claude.complete(ask())).usage
    assert usage.input_tokens == 960
    assert (usage.cache_read_tokens, usage.cache_write_tokens) == (900, 50)


@pytest.mark.parametrize(("wire", "ours"), [("max_tokens", "length"), ("refusal", "content_filter"),
                                            ("stop_sequence", "stop"), ("pause_turn", "unknown")])
async def test_stop_reasons_are_mapped(claude, anthropic_server, wire, ours):
    anthropic_server.enqueue(text="t", finish_reason=wire)
    response = await claude.complete(ask())
    assert response.finish_reason == ours and response.raw_finish_reason == wire


async def test_stream_events_give_text_deltas_and_final_usage(claude, anthropic_server):
    anthropic_server.enqueue(text="Root cause: full disk", usage={"input": 30, "output": 7, "cache_read": 5})
    events = await collect(claude.stream(ask()))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Root cause: full disk"
    done = events[-1]
    assert isinstance(done, StreamDone)
    usage = done.response.usage
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens) == (35, 7, 5)
    assert done.response.finish_reason == "stop" and anthropic_server.requests[0].json["stream"] is True


async def test_streamed_input_json_deltas_assemble_tool_calls(claude, anthropic_server):
    anthropic_server.enqueue(text="Checking", tool_calls=[{"id": "toolu_1", "name": "get_weather",
                                                           "arguments": {"city": "Lima"}},
                                                          {"id": "toolu_2", "name": "get_time", "arguments": {}}])
    events = await collect(claude.stream(ask(tools=[WEATHER])))
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert [d.index for d in deltas] == [0, 0, 0, 1, 1, 1]
    assert deltas[0].name == "get_weather" and deltas[0].id == "toolu_1"
    done = events[-1].response
    assert done.tool_calls == (ToolCall("toolu_1", "get_weather", '{"city": "Lima"}'),
                               ToolCall("toolu_2", "get_time", "{}"))
    assert done.finish_reason == "tool_calls" and done.content == "Checking"


async def test_error_event_mid_stream_is_raised_typed(claude, anthropic_server):
    anthropic_server.enqueue(text="partial answer", stream_error="Overloaded")
    with pytest.raises(ServerError, match="Overloaded"):
        await collect(claude.stream(ask()))


async def test_stream_cut_mid_way_raises_malformed_response(claude, anthropic_server):
    anthropic_server.enqueue(text="a b c d e f", cut_after=4)
    with pytest.raises(MalformedResponseError):
        await collect(claude.stream(ask()))


async def test_unauthorized_is_not_retried(claude, anthropic_server, sleep):
    anthropic_server.enqueue(status=401, error="invalid x-api-key")
    with pytest.raises(AuthenticationError):
        await claude.complete(ask())
    assert len(anthropic_server.requests) == 1 and sleep.waits == []


async def test_rate_limit_honours_retry_after(claude, anthropic_server, sleep):
    anthropic_server.enqueue(status=429, headers={"retry-after": "7"}, error="rate limited")
    anthropic_server.enqueue(text="ok now")
    assert (await claude.complete(ask())).content == "ok now"
    assert sleep.waits == [7.0]


async def test_overloaded_529_is_retried_then_raised(claude, anthropic_server, sleep):
    for _ in range(3):
        anthropic_server.enqueue(status=529, error="Overloaded")
    with pytest.raises(ServerError) as err:
        await claude.complete(ask())
    assert err.value.status_code == 529 and len(anthropic_server.requests) == 3 and len(sleep.waits) == 2


async def test_prompt_too_long_is_a_context_window_error(claude, anthropic_server):
    anthropic_server.enqueue(status=400, error="prompt is too long: 210000 tokens > 200000 maximum")
    with pytest.raises(ContextWindowExceededError):
        await claude.complete(ask())


async def test_malformed_body_is_retried_then_raised(claude, anthropic_server):
    for _ in range(3):
        anthropic_server.enqueue(body="<html>bad gateway</html>")
    with pytest.raises(MalformedResponseError):
        await claude.complete(ask())
    assert len(anthropic_server.requests) == 3


async def test_slow_answer_hits_the_read_timeout(anthropic_server):
    claude = AnthropicMessages(base_url=anthropic_server.base_url, api_key=FAKE_KEY,
                               http=HttpOptions(timeouts=Timeouts(read=0.2), retry=RetryPolicy(max_attempts=1),
                                                breakers=CircuitBreakers()))
    anthropic_server.enqueue(text="late", delay=3)
    with pytest.raises(ProviderTimeoutError):
        await claude.complete(ask())


async def test_cancellation_closes_the_request(claude, anthropic_server):
    anthropic_server.enqueue(text="never", delay=10)
    task = asyncio.create_task(claude.complete(ask()))
    for _ in range(500):
        if anthropic_server.requests:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(500):
        if anthropic_server.requests[0].disconnected:
            break
        await asyncio.sleep(0.01)
    assert anthropic_server.requests[0].disconnected


async def test_invalid_tool_call_arguments_are_rejected_before_sending(claude, anthropic_server):
    history = [Message.user("hi"), Message.assistant(None, [ToolCall("t1", "f", "{not json")])]
    with pytest.raises(InvalidRequestError, match="not valid JSON"):
        await claude.complete(build_request(history, model=MODEL))
    assert anthropic_server.requests == []


def test_missing_key_names_the_variable(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(MissingAPIKeyError, match="ANTHROPIC_API_KEY"):
        AnthropicMessages.from_config(ModelConfig(f"anthropic/{MODEL}"))


async def test_base_url_from_env_with_or_without_v1(anthropic_server, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_server.base_url + "/v1")
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    claude = AnthropicMessages.from_config(ModelConfig(f"anthropic/{MODEL}"))
    anthropic_server.enqueue(text="via env")
    assert (await claude.complete(ask())).content == "via env"
    assert anthropic_server.requests[0].path == "/v1/messages"


async def test_the_key_appears_in_no_repr_error_or_log(claude, anthropic_server, caplog):
    caplog.set_level(logging.DEBUG)
    anthropic_server.enqueue(status=400, error=f"bad key {FAKE_KEY}")
    anthropic_server.enqueue(status=500, error=f"oops {FAKE_KEY}").enqueue(status=500).enqueue(status=500)
    errors = []
    for _ in range(2):
        with pytest.raises(Exception) as err:
            await claude.complete(ask())
        errors.append(err.value)
    assert FAKE_KEY not in repr(claude) and FAKE_KEY not in caplog.text
    assert all(FAKE_KEY not in str(e) for e in errors) and "****" in str(errors[0])


def test_complete_sync(claude, anthropic_server):
    anthropic_server.enqueue(text="sync")
    assert claude.complete_sync(ask()).content == "sync"


async def test_rate_limit_error_event_mid_stream_is_rate_limit(claude, anthropic_server):
    anthropic_server.enqueue(text="x", stream_error="slow down", error_code="rate_limit_error")
    with pytest.raises(RateLimitError):
        await collect(claude.stream(ask()))
