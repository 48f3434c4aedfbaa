import builtins
import json

import pytest
from audit_factory import make_record
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from cascadeflow.errors import ConfigurationError
from cascadeflow.trace.otel import OtelSink


@pytest.fixture
def exporter():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter, provider
    provider.shutdown()


def cascade_record(**overrides):
    tiers = [
        {"tier": 0, "role": "draft", "model": "groq/llama3-8b-8192", "max_tokens": 512, "cost_usd": 0.0001,
         "input_tokens": 400, "output_tokens": 120, "latency_ms": 300.0, "status": "ok", "error": None,
         "finish_reason": "stop", "shrunk_from": None},
        {"tier": 1, "role": "verifier", "model": "groq/llama3-70b-8192", "max_tokens": 1024, "cost_usd": 0.0033,
         "input_tokens": 447, "output_tokens": 192, "latency_ms": 900.0, "status": "ok", "error": None,
         "finish_reason": "length", "shrunk_from": 4096},
    ]
    return make_record(tiers=tiers, action="escalate", **overrides)


def spans_by_name(exporter):
    return {span.name: span for span in exporter.get_finished_spans()}


def test_one_root_span_per_call_and_one_child_per_attempt(exporter):
    memory, provider = exporter
    OtelSink(provider).write(cascade_record())
    spans = spans_by_name(memory)
    assert set(spans) == {"cascadeflow.call", "chat llama3-8b-8192", "chat llama3-70b-8192"}
    root = spans["cascadeflow.call"]
    assert root.parent is None
    for name in ("chat llama3-8b-8192", "chat llama3-70b-8192"):
        child = spans[name]
        assert child.parent.span_id == root.context.span_id
        assert child.context.trace_id == root.context.trace_id
        assert child.kind == SpanKind.CLIENT
    # attempts are laid end to end inside the root, which lasts the call's latency
    draft, verifier = spans["chat llama3-8b-8192"], spans["chat llama3-70b-8192"]
    assert root.end_time - root.start_time == 1_240_000_000
    assert draft.start_time == root.start_time and verifier.start_time == draft.end_time
    assert verifier.end_time - verifier.start_time == 900_000_000


def test_attempt_spans_carry_the_genai_semantic_convention_attributes(exporter):
    memory, provider = exporter
    OtelSink(provider).write(cascade_record())
    attrs = dict(spans_by_name(memory)["chat llama3-70b-8192"].attributes)
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "groq"
    assert attrs["gen_ai.request.model"] == "llama3-70b-8192"
    assert attrs["gen_ai.response.model"] == "llama3-70b-8192"
    assert attrs["gen_ai.request.max_tokens"] == 1024
    assert attrs["gen_ai.usage.input_tokens"] == 447
    assert attrs["gen_ai.usage.output_tokens"] == 192
    assert attrs["gen_ai.response.finish_reasons"] == ("length",)
    assert attrs["cascadeflow.tier"] == 1 and attrs["cascadeflow.role"] == "verifier"
    assert attrs["cascadeflow.cost_usd"] == pytest.approx(0.0033)
    assert attrs["cascadeflow.max_tokens_shrunk_from"] == 4096
    assert "gen_ai.input.messages" not in attrs


def test_root_span_carries_routing_budget_and_cost_under_the_cascadeflow_namespace(exporter):
    memory, provider = exporter
    OtelSink(provider).write(cascade_record())
    attrs = dict(spans_by_name(memory)["cascadeflow.call"].attributes)
    assert attrs["cascadeflow.routing_reason"] == "severity=P0"
    assert attrs["cascadeflow.action"] == "escalate"
    assert attrs["cascadeflow.cost_usd"] == pytest.approx(0.0034)
    assert attrs["cascadeflow.budget_remaining_usd"] == pytest.approx(3.42)
    assert attrs["cascadeflow.run_id"] == "run-1"
    assert attrs["cascadeflow.metadata.alert_id"] == "INC-042"
    assert attrs["cascadeflow.attempts"] == 2
    # token totals stay off gen_ai.usage.* on the root so summing over spans does not double count
    assert not any(key.startswith("gen_ai.") for key in attrs)
    assert attrs["cascadeflow.input_tokens"] == 847


def test_content_is_exported_only_when_opted_in_and_present(exporter):
    memory, provider = exporter
    record = cascade_record(prompt="disk at 61% on db-1", answer="rotate /var/log")
    OtelSink(provider).write(record)
    assert all("gen_ai.input.messages" not in s.attributes for s in memory.get_finished_spans())
    memory.clear()
    OtelSink(provider, record_content=True).write(record)
    attrs = spans_by_name(memory)["chat llama3-70b-8192"].attributes
    assert json.loads(attrs["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "disk at 61% on db-1"}]}]
    assert json.loads(attrs["gen_ai.output.messages"])[0]["parts"][0]["content"] == "rotate /var/log"
    assert "gen_ai.input.messages" not in spans_by_name(memory)["chat llama3-8b-8192"].attributes


def test_failed_attempts_and_calls_get_error_status_and_no_secret(exporter):
    memory, provider = exporter
    tiers = [{"tier": 0, "role": "single", "model": "openai/gpt-4o-mini", "max_tokens": 100, "cost_usd": 0.0,
              "input_tokens": 0, "output_tokens": 0, "latency_ms": 20.0, "status": "error",
              "error": "AuthenticationError: bad key sk-proj-abcdefghijklmnopqrstuvwx", "finish_reason": None,
              "shrunk_from": None}]
    OtelSink(provider).write(make_record(tiers=tiers, error="AuthenticationError: bad key", action="stop"))
    spans = spans_by_name(memory)
    attempt = spans["chat gpt-4o-mini"]
    assert attempt.status.status_code == StatusCode.ERROR
    assert "sk-proj" not in attempt.status.description
    assert attempt.attributes["error.type"] == "AuthenticationError"
    assert spans["cascadeflow.call"].status.status_code == StatusCode.ERROR


def test_in_process_models_get_internal_spans(exporter):
    memory, provider = exporter
    tiers = [{"tier": 0, "role": "single", "model": "local/smollm2-135m", "latency_ms": 5.0, "status": "ok"}]
    OtelSink(provider).write(make_record(tiers=tiers))
    assert spans_by_name(memory)["chat smollm2-135m"].kind == SpanKind.INTERNAL


def test_missing_opentelemetry_names_the_extra_to_install(monkeypatch):
    real_import = builtins.__import__

    def no_otel(name, *args, **kwargs):
        if name.startswith("opentelemetry"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_otel)
    with pytest.raises(ConfigurationError, match=r'pip install "cascadeflow\[otel\]"'):
        OtelSink()
