"""The shipped Grafana dashboard and Prometheus alert rules query only series the collector emits."""

import json
import re

import yaml
from metrics_records import attempt, cascade, record
from prometheus_client.parser import text_string_to_metric_families

from cascadeflow.metrics import LabelConfig, MetricsCollector, asset_path

SERIES = re.compile(r"\bcascadeflow_[a-z_]+\b")


def emitted_series():
    """Every sample name of a scrape after records that exercise each metric (user label on, as the
    top-users panel requires)."""
    collector = MetricsCollector(labels=LabelConfig(user=True))
    collector.write(cascade("a", accepted=True), quality=0.9, baseline_cost=0.004)
    collector.write(cascade("b", accepted=False), quality=0.6, baseline_cost=0.004)
    collector.write(record("h", tiers=[], cost_usd=0.0, action="cache_hit",
                 metadata={"cache": {"hit": True, "kind": "exact", "saved_usd": 0.002}}))
    collector.write(record("s", action="stop", tiers=[attempt(0, "openai/gpt-4o", status="error", cost=0.0)]))
    collector.count_anomaly("cost_rate", "all")
    collector.count_alert("hourly_cost")
    text = collector.scrape().decode()
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def dashboard_queries():
    dashboard = json.loads(asset_path("grafana-dashboard.json").read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]


def rule_queries():
    rules = yaml.safe_load(asset_path("prometheus-alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def test_every_series_a_panel_queries_is_emitted():
    emitted = emitted_series()
    queried = {name for expr in dashboard_queries() for name in SERIES.findall(expr)}
    assert queried and queried <= emitted, sorted(queried - emitted)


def test_every_series_an_alert_rule_queries_is_emitted():
    emitted = emitted_series()
    queried = {name for expr in rule_queries() for name in SERIES.findall(expr)}
    assert queried and queried <= emitted, sorted(queried - emitted)


def test_the_dashboard_has_the_cost_usage_savings_quality_users_budget_and_cache_panels():
    titles = " | ".join(p["title"] for p in json.loads(asset_path("grafana-dashboard.json").read_text())["panels"])
    for word in ("Cost over time", "Drafter vs verifier", "Savings", "Quality", "Top cost users", "Budget remaining",
                 "Cache savings"):
        assert word in titles


def test_every_alert_rule_is_named_and_summarised():
    rules = yaml.safe_load(asset_path("prometheus-alerts.yml").read_text())["groups"][0]["rules"]
    assert all(rule["alert"].startswith("Cascadeflow") and rule["annotations"]["summary"] for rule in rules)
