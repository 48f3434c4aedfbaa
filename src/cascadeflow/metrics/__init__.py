"""Metrics from the audit records: Prometheus (`MetricsCollector`), OpenTelemetry GenAI metrics
(`OtelMetrics`), and the Grafana dashboard and Prometheus alert rules shipped beside them (`asset_path`).

Names load on first use, so importing this package needs neither prometheus-client nor OpenTelemetry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cascadeflow.lazy import lazy_attribute

_HOME = {
    "LabelConfig": "labels",
    "MetricsCollector": "prometheus",
    "OtelMetrics": "otel",
    "serving_registry": "prometheus",
}

__all__ = ["LabelConfig", "MetricsCollector", "OtelMetrics", "asset_path", "serving_registry"]

ASSETS = Path(__file__).parent / "assets"


def asset_path(name: str) -> Path:
    """A shipped file: `grafana-dashboard.json` or `prometheus-alerts.yml`."""
    path = ASSETS / name
    if not path.is_file():
        from cascadeflow.errors import ConfigurationError

        shipped = ", ".join(sorted(p.name for p in ASSETS.iterdir()))
        raise ConfigurationError(f"no shipped metrics file {name!r}; there are: {shipped}")
    return path


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, _HOME, name)


def __dir__() -> list[str]:
    return __all__
