"""OtelMetrics: GenAI client metrics per attempt, read back from the SDK's in-memory reader."""

import pytest
from metrics_records import attempt, cascade, record
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExporter, MetricExportResult

from cascadeflow.errors import ConfigurationError
from cascadeflow.metrics import MetricsCollector, OtelMetrics


def points(reader):
    out = {}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                out[metric.name] = (metric.unit, list(metric.data.data_points))
    return out


@pytest.fixture
def reader():
    made = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[made])
    yield made, provider
    provider.shutdown()


def test_token_usage_and_duration_per_attempt_with_genai_attributes(reader):
    made, provider = reader
    otel = OtelMetrics(provider)
    otel.write(cascade("a", accepted=False))
    got = points(made)
    unit, tokens = got["gen_ai.client.token.usage"]
    assert unit == "{token}"
    by_type = {(p.attributes["gen_ai.request.model"], p.attributes["gen_ai.token.type"]): p.sum for p in tokens}
    assert by_type == {("llama-3.1-8b-instant", "input"): 100, ("llama-3.1-8b-instant", "output"): 40,
                       ("gpt-4o", "input"): 100, ("gpt-4o", "output"): 40}
    assert {p.attributes["gen_ai.provider.name"] for p in tokens} == {"groq", "openai"}
    unit, durations = got["gen_ai.client.operation.duration"]
    assert unit == "s" and sum(p.sum for p in durations) == pytest.approx(0.4)
    assert all(p.attributes["gen_ai.operation.name"] == "chat" for p in durations)
    _, cost = got["cascadeflow.client.cost"]
    assert sum(p.value for p in cost) == pytest.approx(0.0041)


def test_a_failed_attempt_carries_its_error_type(reader):
    made, provider = reader
    OtelMetrics(provider).write(record("x", action="stop", tiers=[attempt(0, "openai/gpt-4o", status="error")]))
    _, durations = points(made)["gen_ai.client.operation.duration"]
    assert [p.attributes.get("error.type") for p in durations] == ["ServerError"]
    assert "gen_ai.response.model" not in durations[0].attributes


def test_the_collector_pushes_to_an_exporter_every_export_interval_and_on_close():
    class Captured(MetricExporter):
        def __init__(self):
            super().__init__()
            self.batches = []

        def export(self, metrics_data, timeout_millis=10_000, **kwargs):
            self.batches.append(metrics_data)
            return MetricExportResult.SUCCESS

        def force_flush(self, timeout_millis=10_000):
            return True

        def shutdown(self, timeout_millis=30_000, **kwargs):
            pass

    exporter = Captured()
    collector = MetricsCollector(export_interval=3600, otel=exporter)
    collector.write(record("a"))
    collector.close()  # the hour has not passed: closing flushes what was recorded
    names = {m.name for batch in exporter.batches for rm in batch.resource_metrics for sm in rm.scope_metrics
             for m in sm.metrics}
    assert {"gen_ai.client.token.usage", "gen_ai.client.operation.duration"} <= names


def test_an_unusable_otel_target_is_rejected():
    with pytest.raises(ConfigurationError, match="otel="):
        MetricsCollector(otel="localhost:4317")
