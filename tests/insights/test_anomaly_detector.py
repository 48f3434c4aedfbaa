"""AnomalyDetector: buckets of audit records, per key, scored per signal; one report per episode."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from cascadeflow.errors import ConfigurationError
from cascadeflow.insights.anomaly import AnomalyDetector
from cascadeflow.metrics import MetricsCollector
from cascadeflow.trace.records import AuditRecord

START = datetime(2026, 6, 1, tzinfo=UTC)


def audit(minute: float, *, cost: float = 0.001, user: str = "alice", action: str = "allow",
          latency_ms: float = 800.0) -> AuditRecord:
    moment = (START + timedelta(minutes=minute)).isoformat()
    return AuditRecord(timestamp=moment, request_id=f"r{minute}", run_id=None, user_id=user, mode="enforce",
                       action=action, model_requested="m", model_selected="m", routing_reason="", input_tokens=10,
                       output_tokens=10, cost_usd=cost, latency_ms=latency_ms, budget_remaining=None,
                       price_version="test", metadata={"team": "sre"})


def feed_normal(detector, minutes, *, user="alice", rng=None, calls=5):
    rng = rng or np.random.default_rng(0)
    for minute in range(minutes):
        for k in range(calls):
            detector.write(audit(minute + k / (calls + 1), cost=float(rng.lognormal(-7, 0.2)), user=user))


def test_a_cost_spike_is_reported_once_with_its_signal_and_key():
    seen = []
    detector = AnomalyDetector(on_anomaly=seen.append)
    feed_normal(detector, 300)
    for k in range(5):  # the same traffic, each call 20 times as expensive
        detector.write(audit(300 + k / 6, cost=0.02))
    detector.write(audit(301.5))
    detector.flush()
    cost = [a for a in seen if a.signal in ("cost_rate", "cost_per_call")]
    assert cost and all(a.key == "all" for a in cost)
    assert len({a.signal for a in cost}) == len(cost)  # one report per signal, not one per bucket


def test_steady_traffic_raises_nothing():
    detector = AnomalyDetector()
    feed_normal(detector, 600)
    detector.flush()
    assert detector.anomalies == []


def test_keys_are_watched_separately():
    detector = AnomalyDetector(key="user_id")
    rng = np.random.default_rng(1)
    feed_normal(detector, 200, user="alice", rng=rng)
    feed_normal(detector, 200, user="bob", rng=rng)
    for k in range(5):
        detector.write(audit(200 + k / 6, cost=0.05, user="bob"))
    detector.write(audit(201.5, user="bob"))
    assert {a.key for a in detector.anomalies} == {"bob"}


def test_verifier_share_is_the_escalated_share_of_cascade_drafts():
    detector = AnomalyDetector()
    for minute in range(300):
        for k in range(10):
            detector.write(audit(minute + k / 11, action="escalate" if k < 2 else "accept"))
    for k in range(10):
        detector.write(audit(300 + k / 11, action="escalate" if k < 8 else "accept"))
    detector.write(audit(301.5, action="accept"))
    assert [a.signal for a in detector.anomalies] == ["verifier_share"]
    assert detector.anomalies[0].value == pytest.approx(0.8)


def test_callbacks_without_arguments_and_the_metrics_counter():
    calls = []
    collector = MetricsCollector()
    detector = AnomalyDetector(on_anomaly=lambda: calls.append(1), metrics_collector=collector)
    for i in range(200):
        detector.observe("cost_rate", 1.0 + 0.01 * (i % 7))
    assert detector.observe("cost_rate", 50.0) is not None
    assert calls == [1]
    assert b'cascadeflow_anomalies_total{key="all",signal="cost_rate"} 1.0' in collector.scrape()


def test_a_failing_callback_is_logged_not_raised(caplog):
    def broken(anomaly):
        raise RuntimeError("pager down")

    detector = AnomalyDetector(on_anomaly=broken)
    for i in range(200):
        detector.observe("latency", 100.0 + i % 5)
    detector.observe("latency", 10_000.0)
    assert "pager down" in caplog.text and len(detector.anomalies) == 1


def test_the_zscore_method_is_available_as_the_baseline():
    detector = AnomalyDetector(method="zscore", window_size=100, std_threshold=3.0)
    for i in range(150):
        detector.observe("call_rate", 10.0 + (i % 3))
    assert detector.observe("call_rate", 40.0).method == "zscore"


@pytest.mark.parametrize("kwargs, message", [
    ({"window_size": 5}, "window_size"), ({"std_threshold": 0}, "std_threshold"),
    ({"method": "prophet"}, "method"), ({"bucket_seconds": 0}, "bucket_seconds"), ({"cooldown": -1}, "cooldown"),
    ({"on_anomaly": "page"}, "on_anomaly"),
])
def test_bad_settings_are_rejected(kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        AnomalyDetector(**kwargs)


def test_a_record_without_an_iso_timestamp_is_a_clear_error():
    record = audit(0)
    record.timestamp = "yesterday"
    with pytest.raises(ConfigurationError, match="ISO-8601"):
        AnomalyDetector().write(record)
