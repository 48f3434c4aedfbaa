"""`MetricsCollector`: a sink that turns each audit record into Prometheus metrics, and serves them.

It counts what the pipeline already recorded (no second accounting): pass it as an audit sink, or to
`CascadeAgent(metrics_collector=...)`, which hands it each finished call's record plus the validator's score
and the baseline cost that only the cascade knows. Under several worker processes (gunicorn, uvicorn
--workers) set PROMETHEUS_MULTIPROC_DIR before start-up: each process writes its values there and the
served view, here or from `cascadeflow metrics serve`, adds them up.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Mapping
from typing import Any

from cascadeflow.errors import ConfigurationError
from cascadeflow.metrics import names
from cascadeflow.metrics.derived import DerivedMetrics
from cascadeflow.metrics.labels import (
    ATTEMPT_LABELS,
    CALL_LABELS,
    LabelConfig,
    RecordLabels,
    cache_info,
    split_model,
)
from cascadeflow.trace.events import is_event

log = logging.getLogger(__name__)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's own setting; read by it at import


def prometheus_client() -> Any:
    try:
        import prometheus_client as client
    except ImportError:
        raise ConfigurationError('MetricsCollector needs prometheus-client: '
                                 'pip install "cascadeflow[prometheus]"') from None
    return client


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def serving_registry(counters: Any = None, *, path: str | None = None) -> Any:
    """The registry a scrape reads: `counters` (this process's metrics), or, under multiprocess mode (`path`
    or PROMETHEUS_MULTIPROC_DIR), the sum of every process's, each with the derived ratios."""
    client = prometheus_client()
    registry = client.CollectorRegistry(auto_describe=False)
    path = path or multiprocess_dir()
    if path is None:
        if counters is None:
            raise ConfigurationError(f"nothing to serve: set {MULTIPROC_ENV} (or pass its directory) to serve "
                                     f"the metrics of worker processes")
        source = counters
        registry.register(counters)
    else:
        from prometheus_client import multiprocess

        if not os.path.isdir(path):
            raise ConfigurationError(f"{MULTIPROC_ENV} directory {path!r} does not exist; create it (empty) "
                                     f"before the worker processes start")
        source = multiprocess.MultiProcessCollector(registry, path=path)
    registry.register(DerivedMetrics(source))
    return registry


class MetricsCollector:
    """Prometheus metrics from audit records (catalogue and units: `cascadeflow.metrics.names`).

    `prometheus_port` starts an HTTP endpoint for Prometheus to scrape (`prometheus_addr`, default all
    interfaces). `labels` adds bounded user/feature labels (LabelConfig). `export_interval` (seconds) is
    how often `OtelMetrics` pushes when `otel=` is given one of its exporters or meter providers; a scrape
    always reads current values.
    """

    def __init__(self, *, export_interval: float = 60.0, prometheus_port: int | None = None,
                 prometheus_addr: str = "0.0.0.0", labels: LabelConfig | None = None, otel: Any = None):
        if isinstance(export_interval, bool) or not isinstance(export_interval, (int, float)) \
                or export_interval <= 0:
            raise ConfigurationError(f"export_interval must be a positive number of seconds, got {export_interval!r}")
        if prometheus_port is not None and (isinstance(prometheus_port, bool) or not isinstance(prometheus_port, int)
                                            or not 0 <= prometheus_port <= 65535):
            raise ConfigurationError(f"prometheus_port must be an int in 0..65535 (0: any free port), "
                                     f"got {prometheus_port!r}")
        if labels is not None and not isinstance(labels, LabelConfig):
            raise ConfigurationError(f"labels must be a LabelConfig, got {type(labels).__name__}")
        client = prometheus_client()
        self.export_interval = float(export_interval)
        self.labels = labels or LabelConfig()
        self._labels = RecordLabels(self.labels)
        self.counters = client.CollectorRegistry(auto_describe=True)
        self._declare(client, self.labels.extra)
        self._attempt_names = ATTEMPT_LABELS + self.labels.extra
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}
        self.registry = serving_registry(self.counters)
        self.otel = _otel_metrics(otel, self.export_interval)
        self.server: Any = None
        self.port: int | None = None
        if prometheus_port is not None:
            self.serve(prometheus_port, addr=prometheus_addr)

    def __repr__(self) -> str:
        return f"MetricsCollector(port={self.port}, labels={self.labels})"

    def _declare(self, client: Any, extra: tuple[str, ...]) -> None:
        call, attempt, reg = CALL_LABELS + extra, ATTEMPT_LABELS + extra, self.counters
        self.queries = client.Counter(names.QUERIES, "Finished calls", call, registry=reg)
        self.cost = client.Counter(names.COST, "Cost in USD, by the model of each attempt", attempt, registry=reg)
        self.tokens = client.Counter(names.TOKENS, "Tokens, by attempt model and type", attempt + ("type",),
                                     registry=reg)
        self.attempts = client.Counter(names.ATTEMPTS, "Model attempts", attempt, registry=reg)
        self.drafts = client.Counter(names.DRAFTER_DECISIONS, "Cascade drafts accepted or escalated",
                                     ("model", "provider", "decision") + extra, registry=reg)
        self.latency = client.Histogram(names.LATENCY, "Call wall time in seconds", call,
                                         buckets=names.LATENCY_BUCKETS, registry=reg)
        self.quality = client.Histogram(names.QUALITY, "Validator score of the returned answer", call,
                                         buckets=names.QUALITY_BUCKETS, registry=reg)
        self.baseline = client.Counter(names.BASELINE_COST, "USD the strongest tier alone would have cost",
                                       call, registry=reg)
        self.compared = client.Counter(names.COMPARED_COST, "Actual USD of the calls with a baseline", call,
                                       registry=reg)
        self.cache_saved = client.Counter(names.CACHE_SAVED, "USD that cache hits did not spend", call,
                                          registry=reg)
        self.budget = client.Gauge(names.BUDGET_REMAINING, "Tightest remaining budget after the last call, USD",
                                   extra, registry=reg, multiprocess_mode="mostrecent")
        self.anomalies = client.Counter(names.ANOMALIES, "Anomalies detected", ("signal", "key"), registry=reg)
        self.alerts = client.Counter(names.ALERTS, "Alerts fired", ("rule",), registry=reg)

    # the sink ------------------------------------------------------------------------------------------
    def write(self, record: Any, *, quality: float | None = None, baseline_cost: float | None = None) -> None:
        """Count one audit record. `quality` (the validator's score of the answer) and `baseline_cost` (USD
        the strongest tier would have cost) come from the cascade; records from other callers lack them."""
        if is_event(record):  # an anomaly event's record is not a call
            return
        call = self._labels.call(record)
        extra = self._labels.extra(record)
        key = tuple(call.values())
        self._child(self.queries, key).inc()
        self._child(self.latency, key).observe(max(float(record.latency_ms or 0.0), 0.0) / 1000)
        self._count_attempts(record, call)
        if quality is not None:
            self._child(self.quality, key).observe(float(quality))
        if baseline_cost is not None:
            self._child(self.baseline, key).inc(max(float(baseline_cost), 0.0))
            self._child(self.compared, key).inc(max(float(record.cost_usd or 0.0), 0.0))
        saved = _cache_saved(record)
        if saved:
            self._child(self.cache_saved, key).inc(saved)
        if record.budget_remaining is not None:
            (self._child(self.budget, tuple(extra.values())) if extra else self.budget).set(
                float(record.budget_remaining))
        self._count_draft(record, extra)
        if self.otel is not None:
            self.otel.write(record)

    def _count_attempts(self, record: Any, call: dict[str, str]) -> None:
        tiers = record.tiers or ()
        if not tiers and record.cost_usd:  # a call priced without attempts (none today): its cost still counts
            self.cost.labels(**call, role="none", status="none").inc(float(record.cost_usd))
        for tier in tiers:
            labels = self._labels.attempt(record, tier, call)
            key = tuple([labels[name] for name in self._attempt_names])
            self._child(self.attempts, key).inc()
            cost = float(tier.get("cost_usd") or 0.0)
            if cost > 0:
                self._child(self.cost, key).inc(cost)
            for kind in ("input", "output"):
                count = int(tier.get(f"{kind}_tokens") or 0)
                if count > 0:
                    self._child(self.tokens, (*key, kind)).inc(count)

    def _count_draft(self, record: Any, extra: dict[str, str]) -> None:
        # "accept": the cascade returned its draft; "escalate": a later tier answered instead
        decision = {"accept": "accepted", "escalate": "escalated"}.get(record.action)
        tiers = record.tiers or ()
        if decision is None or not tiers:
            return
        model, provider = split_model(tiers[0].get("model"))
        self._child(self.drafts, (model, provider, decision, *extra.values())).inc()

    def _child(self, metric: Any, values: tuple[str, ...]) -> Any:
        """The labelled child of `metric` for label values in declaration order (`labels()` validates and
        sorts on every call; a call is counted on every metric, so children are looked up once)."""
        key = (metric, values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def count_anomaly(self, signal: str, key: str) -> None:
        self.anomalies.labels(signal=signal, key=key).inc()

    def count_alert(self, rule: str) -> None:
        self.alerts.labels(rule=rule).inc()

    # serving -------------------------------------------------------------------------------------------
    def scrape(self) -> bytes:
        """The text a Prometheus scrape receives right now."""
        return prometheus_client().generate_latest(self.registry)

    def serve(self, port: int, *, addr: str = "0.0.0.0") -> None:
        """Serve the metrics on http://addr:port/metrics (a daemon thread)."""
        client = prometheus_client()
        try:
            self.server, _thread = client.start_http_server(port, addr=addr, registry=self.registry)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE and multiprocess_dir() is not None:
                # a sibling worker serves the same, summed view of every process
                log.info("port %s is taken; under multiprocess mode another worker serves these metrics", port)
                return
            raise ConfigurationError(f"cannot serve metrics on {addr}:{port}: {exc.strerror}; pick a free "
                                     f"prometheus_port (0 picks any)") from exc
        self.port = self.server.server_address[1]

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        if self.otel is not None:
            self.otel.close()


def _cache_saved(record: Any) -> float:
    """USD a served cache hit did not spend (0 for anything else)."""
    info = cache_info(record)
    if not isinstance(info, Mapping) or not info.get("hit"):
        return 0.0
    try:
        return max(float(info.get("saved_usd") or 0.0), 0.0)
    except (TypeError, ValueError):
        return 0.0


def _otel_metrics(otel: Any, export_interval: float) -> Any:
    if otel is None:
        return None
    from cascadeflow.metrics.otel import OtelMetrics

    if isinstance(otel, OtelMetrics):
        return otel
    return OtelMetrics.from_target(otel, export_interval=export_interval)
