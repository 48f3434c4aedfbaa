"""OpenAIChat against the loopback Chat Completions host: answers, streams, tools, logprobs, errors, retries."""

from __future__ import annotations

import asyncio
import logging

import pytest
from loopback import ManualClock, RecordedSleep, wait_until

from cascadeflow.errors import (
    AuthenticationError,
    CircuitOpenError,
    ContentFilteredError,
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
from cascadeflow.providers.http import BreakerSettings, CircuitBreakers, HttpOptions, RetryPolicy, Timeouts
from cascadeflow.providers.openai_chat import OpenAIChat

FAKE_KEY = "sk-LEAKCHECK-0123456789abcdef"
WEATHER = {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


@pytest.fixture
def sleep():
    return RecordedSleep()


@pytest.fixture
def chat(openai_server, sleep):
    return OpenAIChat("openai", base_url=openai_server.base_url, api_key=FAKE_KEY,
                      http=HttpOptions(sleep=sleep, breakers=CircuitBreakers()))


def ask(text="What is the capital of France?", **kw):
    return build_request(text, model="gpt-4o-mini", **kw)


async def collect(stream):
    return [event async for event in stream]


async def test_plain_answer_carries_text_usage_request_id_and_latency(chat, openai_server):
    openai_server.enqueue(text="Paris.", usage={"input": 14, "output": 2})
    response = await chat.complete(ask(max_tokens=50, temperature=0.2))
    assert response.content == "Paris."
    assert (response.usage.input_tokens, response.usage.output_tokens) == (14, 2)
    assert response.finish_reason == "stop" and response.provider == "openai"
    assert response.request_id == "req_loopback" and response.latency_ms > 0
    sent = openai_server.requests[0]
    assert sent.headers["authorization"] == f"Bearer {FAKE_KEY}"
    assert sent.json["max_completion_tokens"] == 50 and sent.json["temperature"] == 0.2
    assert sent.json["messages"] == [{"role": "user", "content": "What is the capital of France?"}]


async def test_usage_reports_cached_and_reasoning_tokens(chat, openai_server):
    openai_server.enqueue(text="done", usage={"input": 1200, "output": 40, "cache_read": 1024, "reasoning": 30})
    usage = (await chat.complete(ask())).usage
    assert (usage.input_tokens, usage.cache_read_tokens, usage.reasoning_tokens) == (1200, 1024, 30)


async def test_multi_part_content_and_tool_turns_are_sent_structured(chat, openai_server):
    openai_server.enqueue(text="a cat")
    call = ToolCall("call_9", "get_weather", '{"city": "Paris"}')
    messages = [Message.system("be brief"),
                Message.user([TextPart("what is this?"), ImagePart("https://x.test/cat.png", detail="low")]),
                Message.assistant(None, [call]), Message.tool("call_9", "sunny")]
    await chat.complete(build_request(messages, model="gpt-4o-mini"))
    sent = openai_server.requests[0].json["messages"]
    assert sent[1]["content"] == [{"type": "text", "text": "what is this?"},
                                  {"type": "image_url", "image_url": {"url": "https://x.test/cat.png", "detail": "low"}}]
    assert sent[2]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    assert sent[3] == {"role": "tool", "content": "sunny", "tool_call_id": "call_9"}


async def test_tool_calls_are_parsed_with_their_finish_reason(chat, openai_server):
    openai_server.enqueue(text="", tool_calls=[{"id": "call_1", "name": "get_weather", "arguments": {"city": "Oslo"}}])
    response = await chat.complete(ask(tools=[WEATHER], tool_choice="auto"))
    assert response.tool_calls == (ToolCall("call_1", "get_weather", '{"city": "Oslo"}'),)
    assert response.finish_reason == "tool_calls" and response.content == ""
    sent = openai_server.requests[0].json
    assert sent["tools"][0]["function"]["name"] == "get_weather" and sent["tool_choice"] == "auto"


async def test_logprobs_are_requested_and_parsed_with_alternatives(chat, openai_server):
    openai_server.enqueue(text="Yes", logprobs=[("Yes", -0.02, [("Yes", -0.02), ("No", -3.9)])])
    response = await chat.complete(ask(logprobs=True, top_logprobs=2))
    assert response.logprobs[0].token == "Yes" and response.logprobs[0].logprob == pytest.approx(-0.02)
    assert response.logprobs[0].top == (("Yes", -0.02), ("No", -3.9))
    assert openai_server.requests[0].json["logprobs"] is True
    assert openai_server.requests[0].json["top_logprobs"] == 2


async def test_no_logprobs_means_none_not_empty(chat, openai_server):
    openai_server.enqueue(text="x")
    assert (await chat.complete(ask())).logprobs is None


async def test_stream_yields_text_then_done_with_usage_from_the_final_chunk(chat, openai_server):
    openai_server.enqueue(text="The answer is 42", usage={"input": 9, "output": 5, "cache_read": 2})
    events = await collect(chat.stream(ask()))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "The answer is 42"
    done = events[-1]
    assert isinstance(done, StreamDone) and done.response.content == "The answer is 42"
    assert (done.response.usage.input_tokens, done.response.usage.output_tokens) == (9, 5)
    assert done.response.usage.cache_read_tokens == 2 and not done.response.usage.estimated
    assert openai_server.requests[0].json["stream_options"] == {"include_usage": True}


async def test_streamed_tool_call_argument_deltas_are_assembled(chat, openai_server):
    openai_server.enqueue(text="", tool_calls=[{"id": "c1", "name": "get_weather", "arguments": {"city": "Rome"}},
                                               {"id": "c2", "name": "get_time", "arguments": {"tz": "CET"}}])
    events = await collect(chat.stream(ask(tools=[WEATHER])))
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert len(deltas) == 6 and deltas[0].name == "get_weather" and deltas[1].name is None
    done = events[-1].response
    assert done.tool_calls == (ToolCall("c1", "get_weather", '{"city": "Rome"}'),
                               ToolCall("c2", "get_time", '{"tz": "CET"}'))
    assert done.finish_reason == "tool_calls"


async def test_streamed_logprobs_are_collected(chat, openai_server):
    openai_server.enqueue(text="a b", logprobs=[("a", -0.1), (" b", -0.7)])
    done = (await collect(chat.stream(ask(logprobs=True))))[-1].response
    assert [(t.token, t.logprob) for t in done.logprobs] == [("a", -0.1), (" b", -0.7)]


async def test_unauthorized_raises_at_once_without_retry(chat, openai_server, sleep):
    openai_server.enqueue(status=401, error="Incorrect API key provided")
    with pytest.raises(AuthenticationError) as err:
        await chat.complete(ask())
    assert err.value.status_code == 401 and len(openai_server.requests) == 1 and sleep.waits == []
    assert "OPENAI_API_KEY" in str(err.value)


async def test_rate_limit_is_retried_after_the_server_given_wait(chat, openai_server, sleep):
    openai_server.enqueue(status=429, headers={"retry-after": "2"}, error="slow down")
    openai_server.enqueue(text="finally")
    assert (await chat.complete(ask())).content == "finally"
    assert sleep.waits == [2.0] and len(openai_server.requests) == 2


async def test_rate_limit_asking_longer_than_the_cap_is_raised_with_retry_after(openai_server, sleep):
    chat = OpenAIChat("openai", base_url=openai_server.base_url, api_key=FAKE_KEY,
                      http=HttpOptions(sleep=sleep, breakers=CircuitBreakers(), retry=RetryPolicy(max_retry_after=5)))
    openai_server.enqueue(status=429, headers={"retry-after": "120"})
    with pytest.raises(RateLimitError) as err:
        await chat.complete(ask())
    assert err.value.retry_after == 120.0 and sleep.waits == []


async def test_server_errors_are_retried_with_backoff_then_raised(chat, openai_server, sleep):
    for _ in range(3):
        openai_server.enqueue(status=500, error="boom")
    with pytest.raises(ServerError) as err:
        await chat.complete(ask())
    assert err.value.status_code == 500 and len(openai_server.requests) == 3
    policy = RetryPolicy()
    assert len(sleep.waits) == 2
    assert all(0 <= w <= min(policy.max_delay, policy.base_delay * 2 ** i) for i, w in enumerate(sleep.waits))


async def test_context_window_error_is_typed_and_not_retried(chat, openai_server):
    openai_server.enqueue(status=400, error="This model's maximum context length is 8192 tokens",
                          error_code="context_length_exceeded")
    with pytest.raises(ContextWindowExceededError):
        await chat.complete(ask())
    assert len(openai_server.requests) == 1


async def test_content_policy_rejection_is_content_filtered(chat, openai_server):
    openai_server.enqueue(status=400, error="rejected by safety system", error_code="content_policy_violation")
    with pytest.raises(ContentFilteredError):
        await chat.complete(ask())


async def test_malformed_json_body_is_retried_then_raised(chat, openai_server):
    for _ in range(3):
        openai_server.enqueue(body=b'{"choices": [')
    with pytest.raises(MalformedResponseError, match="not JSON"):
        await chat.complete(ask())
    assert len(openai_server.requests) == 3


async def test_a_json_body_of_the_wrong_shape_is_malformed(chat, openai_server):
    openai_server.enqueue(body=b'{"choices": []}')
    openai_server.enqueue(text="fine")
    assert (await chat.complete(ask())).content == "fine"  # the retry recovered


async def test_stream_cut_mid_way_raises_malformed_response(chat, openai_server):
    openai_server.enqueue(text="one two three four five", cut_after=3)
    with pytest.raises(MalformedResponseError, match="cut|ended"):
        await collect(chat.stream(ask()))


async def test_error_chunk_inside_a_stream_is_raised_typed(chat, openai_server):
    openai_server.enqueue(text="partial", stream_error="upstream overloaded")
    with pytest.raises(ServerError, match="overloaded"):
        await collect(chat.stream(ask()))


async def test_slow_response_hits_the_read_timeout(openai_server):
    chat = OpenAIChat("openai", base_url=openai_server.base_url, api_key=FAKE_KEY,
                      http=HttpOptions(timeouts=Timeouts(read=0.2), retry=RetryPolicy(max_attempts=1),
                                       breakers=CircuitBreakers()))
    openai_server.enqueue(text="late", delay=3)
    with pytest.raises(ProviderTimeoutError):
        await chat.complete(ask())


async def test_request_timeout_bounds_the_whole_call(chat, openai_server):
    openai_server.enqueue(text="late", delay=3)
    with pytest.raises(ProviderTimeoutError, match="total timeout"):
        await chat.complete(ask(timeout=0.2))


async def test_request_timeout_bounds_a_slow_stream(chat, openai_server):
    # The stream takes ~4 s; the 1 s bound leaves a loaded machine time to connect before it runs out.
    openai_server.enqueue(text=" ".join(["tick"] * 40), chunk_delay=0.1)
    with pytest.raises(ProviderTimeoutError, match="streaming"):
        await collect(chat.stream(ask(timeout=1.0)))



async def test_cancelling_the_caller_closes_the_http_request(chat, openai_server):
    openai_server.enqueue(text="never", delay=10)
    task = asyncio.create_task(chat.complete(ask()))
    assert await wait_until(lambda: len(openai_server.requests) == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_until(lambda: openai_server.requests[0].disconnected)


async def test_abandoning_a_stream_closes_the_connection(chat, openai_server):
    openai_server.enqueue(text=" ".join(["w"] * 50), chunk_delay=0.05)
    stream = chat.stream(ask())
    first = await anext(stream)
    assert isinstance(first, TextDelta)
    await stream.aclose()
    assert await wait_until(lambda: openai_server.requests[0].disconnected)
    assert not openai_server.requests[0].completed


async def test_breaker_opens_after_failed_calls_and_half_opens_after_cooldown(openai_server, sleep):
    clock = ManualClock()
    chat = OpenAIChat("openai", base_url=openai_server.base_url, api_key=FAKE_KEY,
                      http=HttpOptions(sleep=sleep, retry=RetryPolicy(max_attempts=1),
                                       breakers=CircuitBreakers(settings=BreakerSettings(2, cooldown=30), clock=clock)))
    openai_server.enqueue(status=503).enqueue(status=503)
    for _ in range(2):
        with pytest.raises(ServerError):
            await chat.complete(ask())
    with pytest.raises(CircuitOpenError) as err:
        await chat.complete(ask())
    assert err.value.reopens_in == 30 and len(openai_server.requests) == 2
    clock.advance(30)
    openai_server.enqueue(text="back")
    assert (await chat.complete(ask())).content == "back"  # the half-open probe succeeded: closed again
    openai_server.enqueue(text="again")
    assert (await chat.complete(ask())).content == "again"


async def test_compatible_hosts_use_max_tokens_and_their_own_name(openai_server, monkeypatch):
    monkeypatch.setenv("GROQ_API_KEY", FAKE_KEY)
    groq = OpenAIChat.from_config(ModelConfig("groq/llama3-8b-8192", base_url=openai_server.base_url))
    openai_server.enqueue(text="hi")
    response = await groq.complete(build_request("hi", model="llama3-8b-8192", max_tokens=7))
    assert response.provider == "groq"
    assert openai_server.requests[0].json["max_tokens"] == 7
    assert "max_completion_tokens" not in openai_server.requests[0].json


async def test_base_url_and_key_come_from_the_environment(openai_server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    chat = OpenAIChat.from_config(ModelConfig("openai/gpt-4o-mini"))
    openai_server.enqueue(text="env ok")
    assert (await chat.complete(ask())).content == "env ok"
    assert openai_server.requests[0].headers["authorization"] == "Bearer sk-from-env"


async def test_config_base_url_wins_over_the_environment(openai_server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/never")
    chat = OpenAIChat.from_config(ModelConfig("openai/gpt-4o-mini", base_url=openai_server.base_url,
                                              api_key=FAKE_KEY))
    assert chat.base_url == openai_server.base_url


def test_missing_key_names_the_variable_at_construction(monkeypatch):
    monkeypatch.delenv("DEEPSEEK_API_KEY", raising=False)
    with pytest.raises(MissingAPIKeyError, match="DEEPSEEK_API_KEY"):
        OpenAIChat.from_config(ModelConfig("deepseek/deepseek-chat"))


async def test_self_hosted_hosts_need_no_key_and_send_no_authorization(openai_server, monkeypatch):
    monkeypatch.delenv("VLLM_API_KEY", raising=False)
    vllm = OpenAIChat("vllm", base_url=openai_server.base_url)
    openai_server.enqueue(text="local")
    assert (await vllm.complete(ask())).content == "local"
    assert "authorization" not in openai_server.requests[0].headers


async def test_the_key_appears_in_no_repr_error_or_log(openai_server, sleep, caplog):
    caplog.set_level(logging.DEBUG)
    chat = OpenAIChat("openai", base_url=openai_server.base_url, api_key=FAKE_KEY,
                      http=HttpOptions(sleep=sleep, breakers=CircuitBreakers()))
    openai_server.enqueue(status=401, error=f"Incorrect API key provided: {FAKE_KEY}")
    openai_server.enqueue(status=400, error=f"bad request from {FAKE_KEY}")
    openai_server.enqueue(status=503, error=f"down for {FAKE_KEY}").enqueue(status=503).enqueue(status=503)
    errors = []
    for _ in range(3):
        with pytest.raises(Exception) as err:
            await chat.complete(ask())
        errors.append(err.value)
    assert FAKE_KEY not in repr(chat) and FAKE_KEY not in repr(vars(chat))  # held only inside a Secret
    assert all(FAKE_KEY not in str(e) and FAKE_KEY not in repr(e) for e in errors)
    assert "****" in str(errors[1])  # the echoed key was scrubbed, the rest of the message kept
    assert FAKE_KEY not in caplog.text and "retrying" in caplog.text
    assert FAKE_KEY not in repr(ModelConfig("openai/gpt-4o", api_key=FAKE_KEY))


def test_bad_input_is_rejected_before_anything_is_sent(openai_server):
    with pytest.raises(InvalidRequestError, match="max_tokens"):
        build_request("hi", model="gpt-4o-mini", max_tokens=-5)
    with pytest.raises(InvalidRequestError, match="message 0"):
        build_request([{"role": "wizard", "content": "hi"}], model="gpt-4o-mini")
    with pytest.raises(InvalidRequestError, match="empty"):
        build_request([], model="gpt-4o-mini")
    assert openai_server.requests == []


def test_complete_sync_runs_from_plain_code(chat, openai_server):
    openai_server.enqueue(text="sync works")
    assert chat.complete_sync(ask()).content == "sync works"


async def test_complete_sync_refuses_inside_an_event_loop(chat, openai_server):
    with pytest.raises(RuntimeError, match="await the async version"):
        chat.complete_sync(ask())
    assert openai_server.requests == []


async def test_a_new_compatible_host_is_one_provider_row(openai_server, monkeypatch):
    from cascadeflow.models import PROVIDERS, ProviderFacts
    from cascadeflow.providers.base import clear_provider_cache, provider_for

    monkeypatch.setitem(PROVIDERS, "acme", ProviderFacts("acme", "openai_chat", "ACME_API_KEY",
                                                         "https://api.acme.invalid/v1", "ACME_BASE_URL", None))
    monkeypatch.setenv("ACME_API_KEY", "acme-key")
    monkeypatch.setenv("ACME_BASE_URL", openai_server.base_url)
    clear_provider_cache()
    provider = provider_for(ModelConfig("acme/fast-1"))
    openai_server.enqueue(text="from acme")
    response = await provider.complete(build_request("hi", model="fast-1"))
    assert isinstance(provider, OpenAIChat) and response.provider == "acme" and response.content == "from acme"
    assert openai_server.requests[0].headers["authorization"] == "Bearer acme-key"
    clear_provider_cache()


async def test_the_runtime_pipeline_calls_the_adapter_and_prices_real_usage(openai_server):
    from decimal import Decimal

    from cascadeflow.pricing import PriceBook
    from cascadeflow.providers.base import clear_provider_cache
    from cascadeflow.runtime.pipeline import Runtime

    clear_provider_cache()
    model = ModelConfig("openai/gpt-4o-mini", base_url=openai_server.base_url, api_key=FAKE_KEY,
                        input_price_per_million=1, output_price_per_million=2)
    runtime = Runtime(price_book=PriceBook())
    openai_server.enqueue(text="pipeline ok", usage={"input": 1_000_000, "output": 500_000})
    response, record = await runtime.attempt(model, build_request("hi", max_tokens=100), runtime.new_call())
    assert response.content == "pipeline ok" and openai_server.requests[0].json["model"] == "gpt-4o-mini"
    assert record.cost == Decimal(2) and record.provider_request_id == "req_loopback"
    clear_provider_cache()


def test_provider_for_follows_base_url_changes_in_the_environment(monkeypatch) -> None:
    from cascadeflow.models import ModelConfig
    from cascadeflow.providers.base import provider_for

    cfg = ModelConfig(name="gpt-4o-mini", provider="openai", api_key="sk-test-not-real")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    first = provider_for(cfg)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:10/v1")
    second = provider_for(cfg)
    assert first.base_url.startswith("http://127.0.0.1:9") and second.base_url.startswith("http://127.0.0.1:10")
    assert provider_for(cfg) is second  # still cached while nothing changes


def test_provider_for_reads_no_environment_variable_the_config_overrides(monkeypatch) -> None:
    from cascadeflow.models import ModelConfig
    from cascadeflow.providers.base import provider_for

    cfg = ModelConfig(name="gpt-4o-mini", provider="openai", api_key="sk-test-not-real",
                      base_url="http://127.0.0.1:11/v1")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-one")
    first = provider_for(cfg)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:10/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-two")
    assert provider_for(cfg) is first and first.base_url.startswith("http://127.0.0.1:11")
    keyless = ModelConfig(name="gpt-4o-mini", provider="openai", base_url="http://127.0.0.1:11/v1")
    with_one = provider_for(keyless)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-three")
    assert provider_for(keyless) is not with_one  # the key comes from the environment: its change is seen
