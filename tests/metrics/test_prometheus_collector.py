"""MetricsCollector: audit records in, a Prometheus scrape out, read back with prometheus-client's parser."""

import httpx
import pytest
from metrics_records import attempt, cascade, record
from prometheus_client.parser import text_string_to_metric_families

from cascadeflow.errors import ConfigurationError
from cascadeflow.metrics import LabelConfig, MetricsCollector


def samples(collector, name):
    """{frozenset(labels): value} of every sample called `name` in a fresh scrape."""
    text = collector.scrape().decode()
    return {frozenset(s.labels.items()): s.value for family in text_string_to_metric_families(text)
            for s in family.samples if s.name == name}


def total(collector, name, **match):
    return sum(v for labels, v in samples(collector, name).items() if set(match.items()) <= labels)


@pytest.fixture
def collector():
    made = MetricsCollector()
    yield made
    made.close()


def test_each_record_counts_one_query_labelled_by_the_answering_model(collector):
    collector.write(record("a"))
    collector.write(cascade("b", accepted=False))
    queries = samples(collector, "cascadeflow_query_total")
    assert len(queries) == 2
    single = {"model": "gpt-4o-mini", "provider": "openai", "tier": "0", "action": "allow", "cache": "none",
              "task_type": "summarize"}
    escalated = dict(single, model="gpt-4o", tier="1", action="escalate")
    assert queries == {frozenset(single.items()): 1.0, frozenset(escalated.items()): 1.0}


def test_cost_is_counted_per_attempt_model_and_adds_up_to_the_records(collector):
    records = [record("a"), cascade("b", accepted=False), cascade("c", accepted=True)]
    for r in records:
        collector.write(r)
    assert total(collector, "cascadeflow_cost_dollars_total") == pytest.approx(sum(r.cost_usd for r in records))
    assert total(collector, "cascadeflow_cost_dollars_total", model="gpt-4o", role="verifier") == pytest.approx(0.004)
    assert total(collector, "cascadeflow_cost_dollars_total", model="llama-3.1-8b-instant") == pytest.approx(0.0002)
    assert total(collector, "cascadeflow_tokens_total", type="input") == sum(r.input_tokens for r in records)
    assert total(collector, "cascadeflow_tokens_total", type="output") == sum(r.output_tokens for r in records)


def test_latency_is_a_histogram_in_seconds(collector):
    collector.write(record("a", latency_ms=1500.0))
    collector.write(record("b", latency_ms=300.0))
    assert total(collector, "cascadeflow_latency_seconds_sum") == pytest.approx(1.8)
    assert total(collector, "cascadeflow_latency_seconds_count") == 2
    assert total(collector, "cascadeflow_latency_seconds_bucket", le="0.5") == 1
    assert total(collector, "cascadeflow_latency_seconds_bucket", le="+Inf") == 2


def test_drafter_acceptance_rate_is_accepted_over_drafts_per_drafter_model(collector):
    for i in range(3):
        collector.write(cascade(f"a{i}", accepted=True))
    collector.write(cascade("e", accepted=False))
    collector.write(record("single"))  # not a cascade: no draft decision
    rate = samples(collector, "cascadeflow_drafter_acceptance_rate")
    assert rate == {frozenset({"model": "llama-3.1-8b-instant", "provider": "groq"}.items()): 0.75}


def test_quality_and_savings_come_from_what_the_cascade_passes(collector):
    collector.write(cascade("a", accepted=True), quality=0.9, baseline_cost=0.004)
    collector.write(cascade("b", accepted=False), quality=0.7, baseline_cost=0.004)
    collector.write(record("c"))  # a record without them (an SDK call) changes neither
    assert total(collector, "cascadeflow_quality_score_sum") == pytest.approx(1.6)
    assert total(collector, "cascadeflow_quality_score_count") == 2
    assert total(collector, "cascadeflow_quality_score_bucket", le="0.8") == 1
    spent = 0.0001 + (0.0001 + 0.004)
    assert samples(collector, "cascadeflow_savings_ratio") == {frozenset(): pytest.approx(1 - spent / 0.008)}


def test_no_savings_ratio_before_any_call_has_a_baseline(collector):
    collector.write(record("a"))
    assert samples(collector, "cascadeflow_savings_ratio") == {}


def test_budget_remaining_is_the_latest_records(collector):
    collector.write(record("a", budget_remaining=4.5))
    collector.write(record("b", budget_remaining=3.25))
    collector.write(record("c", budget_remaining=None))
    assert samples(collector, "cascadeflow_budget_remaining_dollars") == {frozenset(): 3.25}


def test_failed_attempts_are_counted_by_status_and_a_stopped_call_by_its_requested_model(collector):
    tiers = [attempt(0, "openai/gpt-4o-mini", status="error", cost=0.0)]
    collector.write(record("x", action="stop", tiers=tiers, model_selected=None))
    assert total(collector, "cascadeflow_attempts_total", status="error", model="gpt-4o-mini") == 1
    assert total(collector, "cascadeflow_query_total", action="stop", model="gpt-4o-mini", tier="none") == 1


def test_cache_label_and_cache_savings_read_from_the_record(collector):
    hit = record("h", tiers=[], cost_usd=0.0, action="cache_hit",
                 metadata={"cache": {"hit": True, "kind": "exact", "saved_usd": 0.002}})
    collector.write(hit)
    collector.write(record("m", metadata={"cache": {"hit": False}}))
    collector.write(record("o", metadata={"cache": {"hit": False, "would_hit": True, "kind": "semantic",
                                                    "saved_usd": 0.003}}))
    by_cache = {dict(k)["cache"]: v for k, v in samples(collector, "cascadeflow_query_total").items()}
    assert by_cache == {"exact_hit": 1, "miss": 1, "observed_hit": 1}
    # only the served hit saved anything: observe mode served the model's answer
    assert total(collector, "cascadeflow_cache_saved_dollars_total") == pytest.approx(0.002)


def test_user_and_feature_labels_only_when_configured():
    plain = MetricsCollector()
    plain.write(record("a"))
    labelled = MetricsCollector(labels=LabelConfig(user=True, feature="feature"))
    labelled.write(record("a"))
    assert all("user" not in dict(k) for k in samples(plain, "cascadeflow_query_total"))
    [labels] = samples(labelled, "cascadeflow_query_total")
    assert dict(labels)["user"] == "alice" and dict(labels)["feature"] == "triage"


def test_user_label_values_are_bounded_and_the_rest_fold_into_other():
    collector = MetricsCollector(labels=LabelConfig(user=True, max_values=2))
    for user in ("u1", "u2", "u3", "u4"):
        collector.write(record(user, user_id=user))
    users = {dict(k)["user"]: v for k, v in samples(collector, "cascadeflow_query_total").items()}
    assert users == {"u1": 1, "u2": 1, "other": 2}


def test_served_endpoint_returns_the_same_metrics_over_http():
    collector = MetricsCollector(prometheus_port=0, prometheus_addr="127.0.0.1")
    try:
        collector.write(record("a"))
        body = httpx.get(f"http://127.0.0.1:{collector.port}/metrics", timeout=10).text
        families = {f.name: f for f in text_string_to_metric_families(body)}
        assert families["cascadeflow_query"].type == "counter"
        assert sum(s.value for s in families["cascadeflow_query"].samples if s.name.endswith("_total")) == 1
    finally:
        collector.close()


def test_a_taken_port_is_a_configuration_error():
    first = MetricsCollector(prometheus_port=0, prometheus_addr="127.0.0.1")
    try:
        with pytest.raises(ConfigurationError, match="prometheus_port"):
            MetricsCollector(prometheus_port=first.port, prometheus_addr="127.0.0.1")
    finally:
        first.close()


@pytest.mark.parametrize("kwargs, message", [
    ({"export_interval": 0}, "export_interval"),
    ({"export_interval": "60"}, "export_interval"),
    ({"prometheus_port": 70000}, "prometheus_port"),
    ({"prometheus_port": "9090"}, "prometheus_port"),
    ({"labels": {"user": True}}, "LabelConfig"),
])
def test_bad_settings_are_rejected_naming_the_setting(kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        MetricsCollector(**kwargs)


@pytest.mark.parametrize("kwargs", [{"max_values": 0}, {"feature": " "}])
def test_bad_label_config_is_rejected(kwargs):
    with pytest.raises(ConfigurationError):
        LabelConfig(**kwargs)
