from decimal import Decimal

import pytest
from replay_fixtures import HEADER, write_jsonl

from cascadeflow.errors import BadRequestError, ConfigurationError
from cascadeflow.messages import Message, Request, StreamDone, TextDelta
from cascadeflow.models import ModelConfig
from cascadeflow.replay.format import load_dataset
from cascadeflow.replay.provider import ReplayProvider
from cascadeflow.runtime.pipeline import Runtime


def request_for(model: str, qid: str) -> Request:
    return Request(messages=(Message.user("ignored: the record answers"),), model=model,
                   metadata={"replay_id": qid})


async def test_answers_with_the_recorded_answer_and_usage(tiny_path):
    provider = ReplayProvider(load_dataset(tiny_path))
    response = await provider.complete(request_for("cheap-model", "q2"))
    assert response.content == "6"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (100, 10)
    assert response.usage.estimated is False
    assert provider.calls == {"cheap": 1, "strong": 0}


async def test_runtime_prices_the_replayed_answer_as_the_real_model(tiny_path):
    ds = load_dataset(tiny_path)
    provider = ReplayProvider(ds)
    runtime = Runtime(resolve_provider=provider.resolver())
    call = runtime.new_call()
    response, record = await runtime.attempt(ds.models["strong"], request_for("", "q1"), call)
    assert response.content == "4"
    assert record.model == "together/strong-model"
    assert record.cost == Decimal(100 * 10 + 10 * 20) / Decimal(1_000_000)


async def test_logprobs_confidence_latency_and_finish_reason_come_from_the_record(tmp_path, tiny_rows):
    tiny_rows[0]["answers"]["cheap"].update(logprobs=[{"token": "4", "logprob": -0.25}], confidence=0.8,
                                            latency_ms=321.0, finish_reason="length")
    provider = ReplayProvider(load_dataset(write_jsonl(tmp_path / "r.jsonl", [HEADER, *tiny_rows])))
    response = await provider.complete(request_for("cheap-model", "q1"))
    assert response.logprobs[0].token == "4" and response.logprobs[0].logprob == -0.25
    assert response.confidence == 0.8
    assert response.latency_ms == 321.0
    assert response.finish_reason == "length"


async def test_unrecorded_tokens_are_estimated_and_flagged(tmp_path, tiny_rows):
    tiny_rows[0]["answers"]["cheap"] = {"content": "four!!!!", "correct": True}
    provider = ReplayProvider(load_dataset(write_jsonl(tmp_path / "r.jsonl", [HEADER, *tiny_rows])))
    response = await provider.complete(request_for("cheap-model", "q1"))
    assert response.usage.estimated is True
    assert response.usage.output_tokens == 2  # 8 bytes / 4
    assert response.usage.input_tokens == 1 + 4  # "2+2?" is 4 bytes, plus the per-message allowance


async def test_stream_yields_the_text_then_the_full_response(tiny_path):
    provider = ReplayProvider(load_dataset(tiny_path))
    events = [e async for e in provider.stream(request_for("strong-model", "q2"))]
    assert isinstance(events[0], TextDelta) and events[0].text == "9"
    assert isinstance(events[-1], StreamDone) and events[-1].response.content == "9"


async def test_unknown_query_model_or_missing_id_are_clear_errors(tiny_path):
    provider = ReplayProvider(load_dataset(tiny_path))
    with pytest.raises(BadRequestError, match="query 'nope' is not in the dataset"):
        await provider.complete(request_for("cheap-model", "nope"))
    with pytest.raises(BadRequestError, match="has no recorded answers"):
        await provider.complete(request_for("gpt-9", "q1"))
    with pytest.raises(ConfigurationError, match="replay_id"):
        await provider.complete(Request(messages=(Message.user("x"),), model="cheap-model"))


def test_resolver_serves_dataset_models_only(tiny_path):
    provider = ReplayProvider(load_dataset(tiny_path))
    resolve = provider.resolver()
    assert resolve(ModelConfig(name="cheap-model", provider="together")) is provider
    with pytest.raises(ConfigurationError, match="not in replay dataset 'tiny'"):
        resolve(ModelConfig(name="gpt-4o"))


async def test_answer_longer_than_max_tokens_is_cut_like_a_real_model(tiny_path):
    provider = ReplayProvider(load_dataset(tiny_path))  # q1 strong: "4" with 10 output tokens recorded
    request = request_for("strong-model", "q1").with_(max_tokens=5)
    response = await provider.complete(request)
    assert response.finish_reason == "length"
    assert response.usage.output_tokens == 5
    assert response.content == ""  # half of a one-character answer
    whole = await provider.complete(request_for("strong-model", "q1").with_(max_tokens=10))
    assert whole.finish_reason == "stop" and whole.content == "4"


async def test_models_are_found_by_provider_qualified_id(tiny_path):
    provider = ReplayProvider(load_dataset(tiny_path))
    response = await provider.complete(request_for("together/strong-model", "q2"))
    assert response.content == "9" and provider.calls["strong"] == 1
