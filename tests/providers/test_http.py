"""The HTTP layer: Retry-After parsing, backoff bounds, the circuit breaker, client pooling, endpoints, SSE."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import aiohttp
import pytest
from loopback import ManualClock, RecordedSleep, Reply

from cascadeflow.errors import (
    CircuitOpenError,
    ConfigurationError,
    MalformedResponseError,
    ProviderConnectionError,
    ProviderTimeoutError,
    ServerError,
)
from cascadeflow.messages import build_request
from cascadeflow.models import PROVIDERS, Secret
from cascadeflow.providers.endpoint import redact, resolve_endpoint
from cascadeflow.providers.http import (
    BreakerSettings,
    CircuitBreaker,
    CircuitBreakers,
    ClientPool,
    HttpOptions,
    RetryPolicy,
    parse_retry_after,
)
from cascadeflow.providers.openai_chat import OpenAIChat
from cascadeflow.providers.sse import sse_events


def test_retry_after_in_seconds():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.5") == 0.5


def test_retry_after_as_an_http_date():
    now = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after(format_datetime(now + timedelta(seconds=42), usegmt=True), now) == 42.0


def test_retry_after_in_the_past_or_garbage():
    now = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after(format_datetime(now - timedelta(seconds=5), usegmt=True), now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_backoff_is_full_jitter_under_an_exponential_cap():
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0)
    rng = random.Random(7)
    for retry in range(8):
        waits = [policy.backoff(retry, rng) for _ in range(200)]
        cap = min(4.0, 0.5 * 2 ** retry)
        assert all(0 <= w <= cap for w in waits)
        assert max(waits) > cap * 0.8  # full jitter spreads over the whole range, not a fixed delay


def test_breaker_states_closed_open_half_open_closed():
    clock = ManualClock()
    breaker = CircuitBreaker(settings=BreakerSettings(failure_threshold=3, cooldown=10), clock=clock)
    for _ in range(2):
        breaker.before_call("p", "m")
        breaker.record_failure()
    assert breaker.state == "closed"
    breaker.before_call("p", "m")
    breaker.record_failure()
    assert breaker.state == "open"
    clock.advance(4)
    with pytest.raises(CircuitOpenError) as err:
        breaker.before_call("p", "m")
    assert err.value.reopens_in == 6 and err.value.provider == "p"
    clock.advance(6)
    assert breaker.state == "half_open"
    breaker.before_call("p", "m")  # the one probe
    with pytest.raises(CircuitOpenError):
        breaker.before_call("p", "m")  # a second caller waits for the probe's verdict
    breaker.record_success()
    assert breaker.state == "closed"
    breaker.before_call("p", "m")


def test_a_failed_probe_reopens_for_a_full_cooldown():
    clock = ManualClock()
    breaker = CircuitBreaker(settings=BreakerSettings(failure_threshold=1, cooldown=10), clock=clock)
    breaker.record_failure()
    clock.advance(10)
    breaker.before_call("p", "m")
    breaker.record_failure()
    assert breaker.state == "open"
    with pytest.raises(CircuitOpenError) as err:
        breaker.before_call("p", "m")
    assert err.value.reopens_in == 10


def test_success_resets_the_consecutive_failure_count():
    breaker = CircuitBreaker(settings=BreakerSettings(failure_threshold=2, cooldown=10), clock=ManualClock())
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state == "closed"


def test_breakers_are_per_provider_and_model():
    breakers = CircuitBreakers()
    assert breakers.get("openai", "a") is breakers.get("openai", "a")
    assert breakers.get("openai", "a") is not breakers.get("openai", "b")
    assert breakers.get("groq", "a") is not breakers.get("openai", "a")


async def test_client_pool_reuses_one_session_per_event_loop():
    pool = ClientPool()
    first = pool.session()
    assert pool.session() is first

    def in_another_loop():
        async def get():
            return pool.session()

        return asyncio.run(get())

    other = await asyncio.to_thread(in_another_loop)
    assert other is not first
    pool.retire_all()
    assert first.closed and other.closed


async def test_client_pool_closes_and_forgets_sessions_of_closed_loops():
    pool = ClientPool()

    async def get():
        return pool.session()

    gone = [await asyncio.to_thread(asyncio.run, get()) for _ in range(3)]
    current = pool.session()
    assert len(pool) == 1 and not current.closed  # only the running loop's session is kept
    assert all(session.closed for session in gone)
    pool.retire_all()


def test_a_session_left_on_an_idle_loop_is_closed_at_exit(openai_server):
    # a script that runs its calls on a loop it never closes: the pooled session is closed on that loop at exit
    openai_server.default = Reply(text="ok")
    script = ("import asyncio\nfrom cascadeflow.messages import build_request\n"
              "from cascadeflow.providers.openai_chat import OpenAIChat\n"
              f"chat = OpenAIChat('vllm', base_url={openai_server.base_url!r})\n"
              "loop = asyncio.new_event_loop()\n"
              "print(loop.run_until_complete(chat.complete(build_request('hi', model='m'))).content)\n")
    done = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok"
    assert "Exception ignored" not in done.stderr and "never awaited" not in done.stderr, done.stderr


async def test_a_url_aiohttp_cannot_request_is_not_sent():
    chat = OpenAIChat("vllm", base_url="http:///v1", http=HttpOptions(retry=RetryPolicy(max_attempts=1),
                                                                      breakers=CircuitBreakers()))
    with pytest.raises(ProviderConnectionError, match="base_url") as err:
        await chat.complete(build_request("hi", model="m"))
    assert [a.outcome for a in err.value.http_attempts] == ["not_sent"]  # nothing sent: never charged


def dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_connection_refused_is_retried_then_a_connection_error():
    sleep = RecordedSleep()
    chat = OpenAIChat("vllm", base_url=f"http://127.0.0.1:{dead_port()}/v1",
                      http=HttpOptions(sleep=sleep, breakers=CircuitBreakers()))
    with pytest.raises(ProviderConnectionError) as err:
        await chat.complete(build_request("hi", model="m"))
    assert isinstance(err.value, ConnectionError) and len(sleep.waits) == 2


async def test_an_answer_without_usage_is_parsed_with_estimated_usage(openai_server):
    openai_server.enqueue(body=json.dumps({"model": "m", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "plain"}, "finish_reason": "stop"}]}))
    chat = OpenAIChat("vllm", base_url=openai_server.base_url, http=HttpOptions(breakers=CircuitBreakers()))
    response = await chat.complete(build_request("hi", model="m"))
    assert response.content == "plain" and openai_server.requests[0].path == "/v1/chat/completions"
    assert response.usage.estimated  # the host reported no usage: an upper bound, flagged as such
    assert response.request_id == "req_loopback"  # the host's request id header


async def test_breaker_failures_only_count_host_health_not_client_errors(openai_server):
    openai_server.default = Reply(status=400, error="bad")
    breakers = CircuitBreakers(settings=BreakerSettings(failure_threshold=1, cooldown=60), clock=ManualClock())
    chat = OpenAIChat("vllm", base_url=openai_server.base_url, http=HttpOptions(breakers=breakers))
    for _ in range(3):
        with pytest.raises(Exception) as err:
            await chat.complete(build_request("hi", model="m"))
        assert not isinstance(err.value, CircuitOpenError)
    assert breakers.get("vllm", "m").state == "closed" and len(openai_server.requests) == 3


async def test_server_error_opens_the_breaker_for_that_model_only(openai_server):
    openai_server.default = Reply(status=500, error="down")
    breakers = CircuitBreakers(settings=BreakerSettings(failure_threshold=1, cooldown=60), clock=ManualClock())
    chat = OpenAIChat("vllm", base_url=openai_server.base_url,
                      http=HttpOptions(breakers=breakers, retry=RetryPolicy(max_attempts=1)))
    with pytest.raises(ServerError):
        await chat.complete(build_request("hi", model="m1"))
    with pytest.raises(CircuitOpenError):
        await chat.complete(build_request("hi", model="m1"))
    with pytest.raises(ServerError):
        await chat.complete(build_request("hi", model="m2"))


def test_endpoint_precedence_config_then_env_then_default():
    env = {"GROQ_BASE_URL": "http://env.test/v1", "GROQ_API_KEY": "gk"}
    assert resolve_endpoint("groq", base_url="http://cfg.test/v1/", env=env).base_url == "http://cfg.test/v1"
    assert resolve_endpoint("groq", env=env).base_url == "http://env.test/v1"
    assert resolve_endpoint("groq", env={"GROQ_API_KEY": "gk"}).base_url == PROVIDERS["groq"].base_url
    assert resolve_endpoint("groq", api_key="explicit", env=env).api_key == Secret("explicit")
    assert resolve_endpoint("groq", env=env).api_key == Secret("gk")


@pytest.mark.parametrize("provider", ["openai", "anthropic", "groq", "together", "openrouter", "deepseek",
                                      "huggingface"])
def test_every_keyed_provider_names_its_variable_when_the_key_is_missing(provider):
    from cascadeflow.errors import MissingAPIKeyError

    with pytest.raises(MissingAPIKeyError) as err:
        resolve_endpoint(provider, env={})
    assert PROVIDERS[provider].key_env in str(err.value)


def test_a_base_url_without_scheme_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="OLLAMA_BASE_URL"):
        resolve_endpoint("ollama", env={"OLLAMA_BASE_URL": "localhost:11434/v1"})


def test_redact_removes_every_occurrence_of_the_key():
    assert redact("a sk-1 b sk-1", Secret("sk-1")) == "a **** b ****"
    assert redact("text", None) == "text"


async def chunks_of(*chunks: bytes | Exception) -> AsyncIterator[bytes]:
    """A streamed body as the bytes arrive (an exception: what reading raised at that point)."""
    for chunk in chunks:
        if isinstance(chunk, Exception):
            raise chunk
        yield chunk


async def test_sse_parses_events_comments_and_multi_line_data():
    body = chunks_of(b": keep-alive\n\nevent: ping\ndata: {}\n\ndata: line1\n", b"data: line2\n\n")
    events = [e async for e in sse_events(body, deadline=float("inf"), provider="p", model="m")]
    assert [(e.event, e.data) for e in events] == [("ping", "{}"), ("message", "line1\nline2")]


async def test_sse_turns_a_dropped_connection_into_malformed_response():
    body = chunks_of(b"data: 1\n\n", aiohttp.ClientPayloadError("Response payload is not completed"))
    with pytest.raises(MalformedResponseError, match="cut mid-way"):
        [e async for e in sse_events(body, deadline=float("inf"), provider="p", model="m")]


async def test_sse_turns_a_stall_past_the_read_timeout_into_a_timeout():
    body = chunks_of(b"data: 1\n\n", aiohttp.SocketTimeoutError("Timeout on reading data from socket"))
    with pytest.raises(ProviderTimeoutError, match="stalled"):
        [e async for e in sse_events(body, deadline=float("inf"), provider="p", model="m")]


async def test_sse_past_the_deadline_is_a_timeout():
    body = chunks_of(b"data: 1\n\n", b"data: 2\n\n")
    with pytest.raises(ProviderTimeoutError):
        [e async for e in sse_events(body, deadline=0.0, provider="p", model="m")]


def test_a_whole_sse_body_parses_into_the_same_events_the_streaming_parser_yields():
    # parse_sse (bodies already read: with_streaming_response) and sse_events share one line parser
    from cascadeflow.harness.instrument.bodies import sse_payloads
    from cascadeflow.providers.sse import ServerSentEvent, parse_sse

    body = (": keep-alive\n\nevent: message_start\ndata: {\"a\": 1}\n\n"
            "data: {\"b\":\ndata: 2}\r\n\r\ndata:{\"c\": 3}\n\ndata: [DONE]\n\ndata: {\"cut")
    assert list(parse_sse(body)) == [
        ServerSentEvent("message_start", '{"a": 1}'), ServerSentEvent("message", '{"b":\n2}'),
        ServerSentEvent("message", '{"c": 3}'), ServerSentEvent("message", "[DONE]"),
        ServerSentEvent("message", '{"cut'),
    ]
    assert list(sse_payloads(body.encode())) == [{"a": 1}, {"b": 2}, {"c": 3}]  # [DONE] and the cut event skipped
