"""`AlertConfig`: rules on metrics computed over a sliding window of audit records, with actions
(a callable, a webhook retried with back-off, a log line), de-duplication and a cool-down, exportable as
Prometheus alert rules over the metrics `MetricsCollector` emits.

A rule fires when its condition becomes true; it does not fire again while the condition stays true
(de-duplication), nor within `cooldown_seconds` of its last firing.
"""

from __future__ import annotations

import logging
import operator
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cascadeflow.errors import ConfigurationError
from cascadeflow.insights.anomaly import takes_argument
from cascadeflow.trace.events import is_event

log = logging.getLogger(__name__)
CONDITIONS: dict[str, Callable[[float, float], bool]] = {
    "greater_than": operator.gt, "less_than": operator.lt, "at_least": operator.ge, "at_most": operator.le}
PROMQL_OPERATORS = {"greater_than": ">", "less_than": "<", "at_least": ">=", "at_most": "<="}
_DRAFTS = 'sum(increase(cascadeflow_drafter_decisions_total{sel}[{w}]))'
# metric -> PromQL over the collector's series ({w}: the rule's window)
PROMQL = {
    "hourly_cost": "sum(increase(cascadeflow_cost_dollars_total[{w}])) * 3600 / {s}",
    "window_cost": "sum(increase(cascadeflow_cost_dollars_total[{w}]))",
    "call_count": "sum(increase(cascadeflow_query_total[{w}]))",
    "avg_cost_per_query": "sum(increase(cascadeflow_cost_dollars_total[{w}])) / sum(increase(cascadeflow_query_total[{w}]))",
    "avg_quality": "sum(rate(cascadeflow_quality_score_sum[{w}])) / sum(rate(cascadeflow_quality_score_count[{w}]))",
    "avg_latency_ms": "1000 * sum(rate(cascadeflow_latency_seconds_sum[{w}])) / sum(rate(cascadeflow_latency_seconds_count[{w}]))",
    "verifier_usage_pct": _DRAFTS.replace("{sel}", '{{decision="escalated"}}') + " / " + _DRAFTS.replace("{sel}", ""),
    "drafter_acceptance_rate": _DRAFTS.replace("{sel}", '{{decision="accepted"}}') + " / " + _DRAFTS.replace("{sel}", ""),
    "error_rate": 'sum(increase(cascadeflow_query_total{{action="stop"}}[{w}])) / sum(increase(cascadeflow_query_total[{w}]))',
}
METRICS = tuple(PROMQL)


@dataclass(frozen=True, slots=True)
class AlertRule:
    """`metric` (one of METRICS) compared with `threshold` by `condition` over the last `window_seconds`.

    `action`: a callable (taking the Alert or nothing), an http(s) URL (the alert is POSTed as JSON, retried
    `webhook_retries` times with back-off), or "log".
    """

    metric: str
    threshold: float
    condition: str = "greater_than"
    action: Any = "log"
    window_seconds: float = 3600.0
    cooldown_seconds: float = 900.0
    name: str = ""
    webhook_retries: int = 3

    def __post_init__(self) -> None:
        if self.metric not in PROMQL:
            raise ConfigurationError(f"unknown alert metric {self.metric!r}; choose one of {', '.join(METRICS)}")
        if self.condition not in CONDITIONS:
            raise ConfigurationError(f"unknown condition {self.condition!r}; use one of {', '.join(CONDITIONS)}")
        if not isinstance(self.threshold, (int, float)) or isinstance(self.threshold, bool):
            raise ConfigurationError(f"threshold of {self.metric!r} must be a number, got {self.threshold!r}")
        if self.window_seconds <= 0 or self.cooldown_seconds < 0:
            raise ConfigurationError("window_seconds must be positive and cooldown_seconds not negative")
        if not (callable(self.action) or self.action == "log" or str(self.action).startswith(("http://", "https://"))):
            raise ConfigurationError(f"action must be a callable, an http(s) webhook URL or 'log'; got {self.action!r}")
        if not self.name:
            object.__setattr__(self, "name", f"{self.metric}_{self.condition}_{self.threshold:g}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    rule: str
    metric: str
    value: float
    threshold: float
    condition: str
    at: str


@dataclass(slots=True, kw_only=True)
class _Point:
    moment: float
    cost: float
    latency_ms: float
    action: str
    quality: float | None


@dataclass(slots=True)
class _RuleState:
    active: bool = False
    last_fired: float = field(default=-float("inf"))


class AlertConfig:
    """Alert rules evaluated on every audit record it is given (as a sink or a CascadeAgent observer)."""

    def __init__(self, rules: Sequence[AlertRule | Mapping[str, Any]], *, metrics_collector: Any = None,
                 post: Callable[[str, dict[str, Any]], Any] | None = None):
        self.rules = tuple(r if isinstance(r, AlertRule) else _rule_from(r) for r in rules)
        if not self.rules:
            raise ConfigurationError("AlertConfig needs at least one rule")
        self.metrics_collector = metrics_collector
        self._post = post or _post_json
        self._points: deque[_Point] = deque()
        self._horizon = max(r.window_seconds for r in self.rules)
        self._state = {r.name: _RuleState() for r in self.rules}
        self._lock = threading.Lock()
        self.fired: list[Alert] = []

    def write(self, record: Any, *, quality: float | None = None, baseline_cost: float | None = None) -> None:
        if is_event(record):  # an anomaly event's record is not a call
            return
        moment = datetime.fromisoformat(str(record.timestamp)).timestamp()
        with self._lock:
            self._points.append(_Point(moment=moment, cost=float(record.cost_usd or 0.0),
                                       latency_ms=float(record.latency_ms or 0.0), action=record.action,
                                       quality=quality))
            while self._points and self._points[0].moment < moment - self._horizon:
                self._points.popleft()
            due = [(rule, value) for rule in self.rules
                   if (value := self.value(rule.metric, rule.window_seconds, moment)) is not None
                   and self._should_fire(rule, value, moment)]
        for rule, value in due:
            self._fire(rule, value, record.timestamp)

    def value(self, metric: str, window_seconds: float, now: float) -> float | None:
        """The metric over the records of the last `window_seconds` before `now` (None when undefined)."""
        points = [p for p in self._points if p.moment > now - window_seconds]
        if not points:
            return None
        cost = sum(p.cost for p in points)
        drafts = [p for p in points if p.action in ("accept", "escalate")]
        scored = [p.quality for p in points if p.quality is not None]
        values = {
            "hourly_cost": cost * 3600 / window_seconds, "window_cost": cost, "call_count": float(len(points)),
            "avg_cost_per_query": cost / len(points),
            "avg_quality": sum(scored) / len(scored) if scored else None,
            "avg_latency_ms": sum(p.latency_ms for p in points) / len(points),
            "verifier_usage_pct": sum(p.action == "escalate" for p in drafts) / len(drafts) if drafts else None,
            "drafter_acceptance_rate": sum(p.action == "accept" for p in drafts) / len(drafts) if drafts else None,
            "error_rate": sum(p.action == "stop" for p in points) / len(points),
        }
        return values[metric]

    def _should_fire(self, rule: AlertRule, value: float, moment: float) -> bool:
        state = self._state[rule.name]
        if not CONDITIONS[rule.condition](value, rule.threshold):
            state.active = False
            return False
        if state.active or moment - state.last_fired < rule.cooldown_seconds:
            state.active = True
            return False
        state.active, state.last_fired = True, moment
        return True

    def _fire(self, rule: AlertRule, value: float, at: str) -> None:
        alert = Alert(rule=rule.name, metric=rule.metric, value=value, threshold=rule.threshold,
                      condition=rule.condition, at=at)
        self.fired.append(alert)
        log.warning("alert %s: %s is %.6g (%s %g)", rule.name, rule.metric, value, rule.condition, rule.threshold)
        if self.metrics_collector is not None:
            self.metrics_collector.count_alert(rule.name)
        if callable(rule.action):
            try:
                rule.action(alert) if takes_argument(rule.action) else rule.action()
            except Exception:
                log.exception("alert action of %s failed", rule.name)
        elif rule.action != "log":
            threading.Thread(target=self._deliver, args=(rule, alert), daemon=True).start()

    def _deliver(self, rule: AlertRule, alert: Alert) -> None:
        payload = {"rule": alert.rule, "metric": alert.metric, "value": alert.value, "threshold": alert.threshold,
                   "condition": alert.condition, "at": alert.at}
        for attempt in range(rule.webhook_retries + 1):
            try:
                self._post(str(rule.action), payload)
                return
            except Exception as exc:  # noqa: BLE001  any failure to deliver (network, non-2xx) is retried, then logged
                if attempt == rule.webhook_retries:
                    log.error("alert webhook for %s failed after %d attempts: %s", rule.name, attempt + 1, exc)
                    return
                time.sleep(min(0.5 * 2 ** attempt, 10.0))

    def to_prometheus_rules(self, group: str = "cascadeflow-alert-config") -> str:
        """The rules as a Prometheus rule file (YAML) over MetricsCollector's series."""
        import yaml

        rules = []
        for rule in self.rules:
            window = f"{int(rule.window_seconds)}s"
            expr = PROMQL[rule.metric].format(w=window, s=int(rule.window_seconds))
            rules.append({"alert": rule.name, "expr": f"{expr} {PROMQL_OPERATORS[rule.condition]} {rule.threshold:g}",
                          "labels": {"source": "cascadeflow"},
                          "annotations": {"summary": f"{rule.metric} {rule.condition} {rule.threshold:g}"}})
        return yaml.safe_dump({"groups": [{"name": group, "rules": rules}]}, sort_keys=False)


def _rule_from(spec: Mapping[str, Any]) -> AlertRule:
    try:
        return AlertRule(**spec)
    except TypeError as exc:
        raise ConfigurationError(f"bad alert rule {dict(spec)!r}: {exc}; a rule takes metric, threshold, "
                                 f"condition, action, window_seconds, cooldown_seconds, name") from None


def _post_json(url: str, payload: dict[str, Any]) -> None:
    import httpx

    httpx.post(url, json=payload, timeout=10.0).raise_for_status()
