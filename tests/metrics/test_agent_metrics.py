"""CascadeAgent(metrics_collector=...): every finished call's audit record reaches the collector."""

import pytest
from metrics_records import record
from prometheus_client.parser import text_string_to_metric_families

from cascadeflow.cascade.agent import CascadeAgent
from cascadeflow.errors import CascadeExhausted, ConfigurationError, ServerError
from cascadeflow.metrics import MetricsCollector
from cascadeflow.models import ModelConfig
from cascadeflow.runtime.pipeline import Runtime
from cascadeflow.testing import ScriptedProvider

CHEAP = ModelConfig("llama-3.1-8b-instant", provider="groq")
TOP = ModelConfig("gpt-4o", provider="openai")
GOOD = ("TCP congestion control reacts to packet loss by shrinking the congestion window: on a timeout the "
        "window drops to one segment and slow start begins again, while three duplicate ACKs trigger fast "
        "retransmit and the window is halved before additive increase resumes.")


class ListSink:
    def __init__(self):
        self.records = []

    def write(self, record):
        self.records.append(record)


def values(collector, name):
    text = collector.scrape().decode()
    return [s for f in text_string_to_metric_families(text) for s in f.samples if s.name == name]


def agent_with(script, collector, sink):
    provider = ScriptedProvider({name: list(replies) for name, replies in script.items()})
    runtime = Runtime(resolve_provider=provider.resolver(), sinks=[sink])
    return CascadeAgent(models=[CHEAP, TOP], runtime=runtime, metrics_collector=collector)


async def test_agent_calls_are_counted_from_the_records_the_pipeline_wrote():
    collector, sink = MetricsCollector(), ListSink()
    agent = agent_with({CHEAP.name: [GOOD, ""], TOP.name: [GOOD]}, collector, sink)
    first = await agent.run("How does TCP react to loss?")
    second = await agent.run("How does TCP react to loss, again?")
    assert first.draft_accepted and not second.draft_accepted
    cost = sum(s.value for s in values(collector, "cascadeflow_cost_dollars_total"))
    assert cost == pytest.approx(sum(r.cost_usd for r in sink.records))
    actions = {s.labels["action"]: s.value for s in values(collector, "cascadeflow_query_total")}
    assert actions == {"accept": 1, "escalate": 1}
    [rate] = values(collector, "cascadeflow_drafter_acceptance_rate")
    assert rate.value == 0.5
    assert sum(s.value for s in values(collector, "cascadeflow_quality_score_count")) == 2
    [savings] = values(collector, "cascadeflow_savings_ratio")
    baseline = float(first.baseline_cost) + float(second.baseline_cost)
    assert savings.value == pytest.approx(1 - (float(first.total_cost) + float(second.total_cost)) / baseline)


async def test_a_stopped_call_is_counted_too():
    collector, sink = MetricsCollector(), ListSink()
    agent = agent_with({CHEAP.name: [ServerError("down")], TOP.name: [ServerError("down")]}, collector, sink)
    with pytest.raises(CascadeExhausted):
        await agent.run("anything")
    assert {s.labels["action"] for s in values(collector, "cascadeflow_query_total")} == {"stop"}
    assert len(sink.records) == 1


async def test_a_failing_collector_does_not_fail_the_call(caplog):
    class Broken:
        def write(self, record, **_):
            raise RuntimeError("collector down")

    agent = agent_with({CHEAP.name: [GOOD]}, Broken(), ListSink())
    result = await agent.run("How does TCP react to loss?")
    assert result.content == GOOD and "collector down" in caplog.text


def test_an_object_that_cannot_take_records_is_rejected():
    with pytest.raises(ConfigurationError, match="metrics_collector"):
        CascadeAgent(models=[CHEAP], metrics_collector="prometheus")


def test_a_collector_is_also_an_audit_sink_for_any_runtime():
    collector = MetricsCollector()
    Runtime(sinks=[collector])  # the sink protocol: write(record)
    collector.write(record("sdk-call"))
    assert sum(s.value for s in values(collector, "cascadeflow_query_total")) == 1


async def test_the_agent_hands_records_to_its_anomaly_detector_and_alert_config_too():
    from cascadeflow.insights.alerts import AlertConfig
    from cascadeflow.insights.anomaly import AnomalyDetector

    detector = AnomalyDetector()
    alerts = AlertConfig(rules=[{"metric": "call_count", "threshold": 0, "name": "any"}])
    provider = ScriptedProvider({CHEAP.name: [GOOD]})
    agent = CascadeAgent(models=[CHEAP, TOP], runtime=Runtime(resolve_provider=provider.resolver()),
                         anomaly_detector=detector, alert_config=alerts)
    await agent.run("How does TCP react to loss?")
    detector.flush()
    assert [a.rule for a in alerts.fired] == ["any"]
    assert detector.keys == ["all"]  # the record reached the detector


async def test_a_cache_hit_is_counted_with_the_money_it_saved():
    from cascadeflow.cache.config import CacheConfig

    collector, sink = MetricsCollector(), ListSink()
    provider = ScriptedProvider({CHEAP.name: [GOOD]})
    agent = CascadeAgent(models=[CHEAP, TOP], runtime=Runtime(resolve_provider=provider.resolver(), sinks=[sink]),
                         metrics_collector=collector, cache_config=CacheConfig(enabled=True, backend="memory"))
    first = await agent.run("How does TCP react to loss?")
    second = await agent.run("How does TCP react to loss?")
    assert second.content == first.content and len(sink.records) == 2
    by_cache = {s.labels["cache"]: s.value for s in values(collector, "cascadeflow_query_total")}
    assert by_cache == {"miss": 1, "exact_hit": 1}
    [saved] = values(collector, "cascadeflow_cache_saved_dollars_total")
    assert saved.value == pytest.approx(float(first.total_cost))
