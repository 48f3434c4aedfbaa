"""Anomalies an agent's detector finds are written to the audit log as event records, once each; the
observers and reports that count calls leave those records out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from cascadeflow.cascade.agent import CascadeAgent
from cascadeflow.insights.anomaly import AnomalyDetector
from cascadeflow.metrics import MetricsCollector
from cascadeflow.models import ModelConfig
from cascadeflow.reports import report
from cascadeflow.runtime.pipeline import Runtime
from cascadeflow.testing import ScriptedProvider
from cascadeflow.trace.events import ANOMALY_ACTION, is_event
from cascadeflow.trace.jsonl import JsonlSink
from cascadeflow.trace.reader import read_log
from cascadeflow.trace.records import AuditRecord

CHEAP = ModelConfig("llama-3.1-8b-instant", provider="groq")
TOP = ModelConfig("gpt-4o", provider="openai")
ANSWER = ("TCP halves its congestion window on three duplicate ACKs and falls back to slow start on a timeout, "
          "then grows the window again by one segment per round trip.")


def past(start: datetime, minute: float, cost: float) -> AuditRecord:
    return AuditRecord(timestamp=(start + timedelta(minutes=minute)).isoformat(), request_id=f"past-{minute}",
                       run_id=None, user_id="alice", mode="enforce", action="allow", model_requested="m",
                       model_selected="m", routing_reason="", input_tokens=10, output_tokens=10, cost_usd=cost,
                       latency_ms=800.0, budget_remaining=None, price_version="test")


def trained_detector() -> AnomalyDetector:
    """A detector that has seen 300 minutes of steady traffic and then a minute of calls 20 times as costly,
    whose bucket the next record closes."""
    detector = AnomalyDetector()
    rng = np.random.default_rng(0)
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=400)  # on a bucket boundary
    for minute in range(300):
        for k in range(5):
            detector.write(past(start, minute + k / 6, float(rng.lognormal(-7, 0.2))))
    for k in range(5):
        detector.write(past(start, 300 + k / 6, 0.02))
    return detector


def test_an_anomaly_found_on_an_agent_call_is_written_to_the_audit_log(tmp_path):
    detector, collector = trained_detector(), MetricsCollector()
    assert detector.anomalies == []
    sink = JsonlSink(tmp_path / "audit.jsonl")
    provider = ScriptedProvider({CHEAP.name: [ANSWER, ANSWER]})
    runtime = Runtime(resolve_provider=provider.resolver(), sinks=[sink, collector])
    agent = CascadeAgent(models=[CHEAP, TOP], runtime=runtime, anomaly_detector=detector, name="ops")
    agent.run_queries(["How does TCP react to loss?"])
    found = list(detector.anomalies)
    assert any(a.signal in ("cost_rate", "cost_per_call") for a in found)
    agent.run_queries(["And to a timeout?"])  # a later call writes no anomaly twice
    sink.close()

    records = read_log(tmp_path / "audit.jsonl").records
    events = [r for r in records if is_event(r)]
    assert [e["metadata"]["anomaly"]["signal"] for e in events] == [a.signal for a in found]
    assert all(e["action"] == ANOMALY_ACTION and e["cost_usd"] == 0 and e["tiers"] == [] and e["agent_id"] == "ops"
               for e in events)
    # the collector, a sink of the runtime too, did not take the events for calls
    queries = [s for f in text_string_to_metric_families(collector.scrape().decode()) for s in f.samples
               if s.name == "cascadeflow_query_total"]
    assert sum(s.value for s in queries) == 2
    rep = report(tmp_path / "audit.jsonl")
    assert rep.total.calls == 2 and [a["signal"] for a in rep.anomalies] == [a.signal for a in found]


def test_anomalies_found_before_the_agent_watched_are_not_its_to_record(tmp_path):
    detector = AnomalyDetector()
    for value in [1.0] * 200 + [1000.0]:  # past the default method's warm-up of 150 values
        detector.observe("cost_rate", value)
    assert detector.anomalies
    sink = JsonlSink(tmp_path / "audit.jsonl")
    provider = ScriptedProvider({CHEAP.name: [ANSWER]})
    agent = CascadeAgent(models=[CHEAP, TOP], runtime=Runtime(resolve_provider=provider.resolver(), sinks=[sink]),
                         anomaly_detector=detector)
    agent.run_queries(["How does TCP react to loss?"])
    sink.close()
    assert [r["action"] for r in read_log(tmp_path / "audit.jsonl").records] == ["accept"]


def test_the_log_summaries_leave_event_records_out(tmp_path):
    from cascadeflow.trace.events import anomaly_record
    from cascadeflow.trace.reader import summarise, total

    class Finding:
        signal, key, value, score, at, method = "latency", "all", 9000.0, 6.0, "2026-11-02T12:00:00+00:00", "robust"

    sink = JsonlSink(tmp_path / "audit.jsonl")
    sink.write(past(datetime(2026, 11, 2, tzinfo=UTC), 0, 0.01))
    sink.write(anomaly_record(Finding(), mode="enforce", price_version="test", key_field="user_id"))
    sink.close()
    records = read_log(tmp_path / "audit.jsonl").records
    assert [r["action"] for r in records] == ["allow", ANOMALY_ACTION]
    assert records[1]["user_id"] == "all" and records[1]["metadata"]["anomaly"]["signal"] == "latency"
    assert total(records).count == 1 and [g.key for g in summarise(records, by="action")] == ["allow"]


def test_a_detector_among_the_runtime_sinks_has_its_anomalies_written_too(tmp_path):
    detector = trained_detector()
    sink = JsonlSink(tmp_path / "audit.jsonl")
    provider = ScriptedProvider({CHEAP.name: [ANSWER]})
    runtime = Runtime(resolve_provider=provider.resolver(), sinks=[sink, detector])
    CascadeAgent(models=[CHEAP, TOP], runtime=runtime).run_queries(["How does TCP react to loss?"])
    sink.close()
    events = [r for r in read_log(tmp_path / "audit.jsonl").records if is_event(r)]
    assert detector.anomalies and [e["metadata"]["anomaly"]["signal"] for e in events] == \
        [a.signal for a in detector.anomalies]


def test_a_detector_that_is_both_sink_and_observer_records_each_anomaly_once(tmp_path):
    detector = trained_detector()
    sink = JsonlSink(tmp_path / "audit.jsonl")
    provider = ScriptedProvider({CHEAP.name: [ANSWER]})
    runtime = Runtime(resolve_provider=provider.resolver(), sinks=[sink, detector])
    agent = CascadeAgent(models=[CHEAP, TOP], runtime=runtime, anomaly_detector=detector)
    agent.run_queries(["How does TCP react to loss?"])
    sink.close()
    events = [r for r in read_log(tmp_path / "audit.jsonl").records if is_event(r)]
    assert len(events) == len(detector.anomalies) > 0
