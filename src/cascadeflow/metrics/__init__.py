"""Metrics from the audit records: Prometheus (`MetricsCollector`), OpenTelemetry GenAI metrics
(`OtelMetrics`), and the Grafana dashboard and Prometheus alert rules shipped beside them (`asset_path`).

Names load on first use, so importing this package needs neither prometheus-client nor OpenTelemetry.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any

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
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'cascadeflow.metrics' has no attribute {name!r}")
    value = getattr(import_module(f"cascadeflow.metrics.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
