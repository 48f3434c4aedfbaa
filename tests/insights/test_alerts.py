"""AlertConfig: rules over a sliding window of records, de-duplication, cool-down, actions, Prometheus export."""

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
import yaml

from cascadeflow.errors import ConfigurationError
from cascadeflow.insights.alerts import METRICS, AlertConfig, AlertRule
from cascadeflow.metrics import MetricsCollector
from cascadeflow.trace.records import AuditRecord

START = datetime(2026, 6, 1, tzinfo=UTC)


def audit(minute, *, cost=0.01, action="allow"):
    return AuditRecord(timestamp=(START + timedelta(minutes=minute)).isoformat(), request_id=f"r{minute}", run_id=None,
                       user_id="u", mode="enforce", action=action, model_requested="m", model_selected="m",
                       routing_reason="", input_tokens=1, output_tokens=1, cost_usd=cost, latency_ms=500.0,
                       budget_remaining=None, price_version="v")


def test_the_seed_shaped_rules_fire_on_cost_quality_and_verifier_share():
    fired = []
    config = AlertConfig(rules=[
        {"metric": "hourly_cost", "threshold": 10.0, "condition": "greater_than", "action": lambda: fired.append("cost")},
        {"metric": "avg_quality", "threshold": 0.85, "condition": "less_than", "action": lambda: fired.append("quality")},
        {"metric": "verifier_usage_pct", "threshold": 0.5, "condition": "greater_than",
         "action": lambda: fired.append("verifier")},
    ])
    config.write(audit(0, cost=2.0, action="accept"), quality=0.95)
    assert fired == []
    config.write(audit(1, cost=9.0, action="escalate"), quality=0.6)  # $11 within the hour, quality 0.775
    config.write(audit(2, cost=0.1, action="escalate"), quality=0.9)  # 2 of 3 drafts escalated
    assert fired == ["cost", "quality", "verifier"]


def test_a_rule_fires_once_per_episode_and_not_again_within_its_cooldown():
    config = AlertConfig(rules=[AlertRule(metric="window_cost", threshold=1.0, window_seconds=600,
                                          cooldown_seconds=3600)])
    for minute in range(5):
        config.write(audit(minute, cost=0.5))  # over $1 from the 3rd record on: one alert
    config.write(audit(30, cost=0.01))  # the window emptied: back to normal
    for minute in range(31, 35):
        config.write(audit(minute, cost=0.5))  # above again, but within the hour's cool-down
    config.write(audit(100, cost=0.01))
    for minute in range(101, 105):
        config.write(audit(minute, cost=0.5))  # cool-down over: fires again
    assert [a.at[11:16] for a in config.fired] == ["00:02", "01:42"]


def test_alerts_are_counted_in_the_metrics():
    collector = MetricsCollector()
    config = AlertConfig(rules=[{"metric": "error_rate", "threshold": 0.4, "name": "errors"}],
                         metrics_collector=collector)
    config.write(audit(0, action="stop"))
    assert b'cascadeflow_alerts_total{rule="errors"} 1.0' in collector.scrape()


class Flaky(BaseHTTPRequestHandler):
    answers: ClassVar[list[int]] = []
    bodies: ClassVar[list[dict]] = []

    def do_POST(self):
        self.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(self.answers.pop(0) if self.answers else 200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_webhook_is_retried_until_it_is_accepted():
    Flaky.answers, Flaky.bodies = [503, 500], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        config = AlertConfig(rules=[AlertRule(metric="call_count", threshold=0, action=url, name="traffic")])
        config.write(audit(0))
        deadline = time.monotonic() + 60
        while len(Flaky.bodies) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(Flaky.bodies) == 3
        assert Flaky.bodies[-1]["rule"] == "traffic" and Flaky.bodies[-1]["value"] == 1.0
    finally:
        server.shutdown()


def test_exported_prometheus_rules_query_series_the_collector_emits():
    from test_dashboard_and_rules import SERIES, emitted_series

    config = AlertConfig(rules=[AlertRule(metric=m, threshold=1.0) for m in METRICS])
    rules = yaml.safe_load(config.to_prometheus_rules())["groups"][0]["rules"]
    assert len(rules) == len(METRICS)
    queried = {name for rule in rules for name in SERIES.findall(rule["expr"])}
    assert queried <= emitted_series()
    cost = next(r for r in rules if r["alert"].startswith("hourly_cost"))
    assert cost["expr"] == "sum(increase(cascadeflow_cost_dollars_total[3600s])) * 3600 / 3600 > 1"


@pytest.mark.parametrize("spec, message", [
    ({"metric": "hourly_spend", "threshold": 1}, "unknown alert metric"),
    ({"metric": "hourly_cost", "threshold": 1, "condition": "above"}, "unknown condition"),
    ({"metric": "hourly_cost", "threshold": "ten"}, "must be a number"),
    ({"metric": "hourly_cost", "threshold": 1, "action": "slack"}, "action"),
    ({"metric": "hourly_cost", "threshold": 1, "severity": "high"}, "bad alert rule"),
])
def test_bad_rules_are_rejected_naming_the_fix(spec, message):
    with pytest.raises(ConfigurationError, match=message):
        AlertConfig(rules=[spec])
