"""OpenTelemetry GenAI client metrics from audit records: `gen_ai.client.token.usage` and
`gen_ai.client.operation.duration` per attempt (the spans stay with `trace.otel.OtelSink`), plus cost.

Attribute names follow the GenAI semantic conventions (development stability); cost has no standard
name yet, so it is `cascadeflow.client.cost` in USD.
"""

from __future__ import annotations

from typing import Any

from cascadeflow.errors import ConfigurationError
from cascadeflow.metrics.labels import NONE, split_model

TOKEN_USAGE = "gen_ai.client.token.usage"
OPERATION_DURATION = "gen_ai.client.operation.duration"
CLIENT_COST = "cascadeflow.client.cost"
# the bucket boundaries the convention recommends for each histogram
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)


def _otel_metrics_api() -> Any:
    try:
        from opentelemetry import metrics
    except ImportError:
        raise ConfigurationError('OpenTelemetry metrics need: pip install "cascadeflow[otel]"') from None
    return metrics


class OtelMetrics:
    """Record GenAI metrics on `meter_provider` (default: the global one)."""

    def __init__(self, meter_provider: Any = None):
        meter = _otel_metrics_api().get_meter("cascadeflow", meter_provider=meter_provider)
        self.meter_provider = meter_provider
        self.tokens = meter.create_histogram(TOKEN_USAGE, unit="{token}", description="Tokens used per attempt",
                                             explicit_bucket_boundaries_advisory=list(TOKEN_BUCKETS))
        self.duration = meter.create_histogram(OPERATION_DURATION, unit="s", description="Attempt duration",
                                               explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS))
        self.cost = meter.create_counter(CLIENT_COST, unit="USD", description="Cost per attempt")
        self._owned = False

    @classmethod
    def from_target(cls, target: Any, *, export_interval: float) -> OtelMetrics:
        """`True` (the global meter provider), a MeterProvider, or a MetricExporter pushed every
        `export_interval` seconds through a provider made for it."""
        if target is True:
            return cls()
        if callable(getattr(target, "get_meter", None)):
            return cls(target)
        if callable(getattr(target, "export", None)):
            from opentelemetry.sdk.metrics import MeterProvider
            from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

            reader = PeriodicExportingMetricReader(target, export_interval_millis=export_interval * 1000)
            made = cls(MeterProvider(metric_readers=[reader]))
            made._owned = True
            return made
        raise ConfigurationError(f"otel= takes True, a MeterProvider or a MetricExporter, got {target!r}")

    def write(self, record: Any) -> None:
        for tier in record.tiers or ():
            model, provider = split_model(tier.get("model"))
            attrs: dict[str, Any] = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": provider,
                                     "gen_ai.request.model": model}
            if tier.get("status") == "ok":
                attrs["gen_ai.response.model"] = model
            elif tier.get("error"):
                attrs["error.type"] = str(tier["error"]).split(":", 1)[0]
            else:
                attrs["error.type"] = str(tier.get("status") or NONE)
            self.duration.record(max(float(tier.get("latency_ms") or 0.0), 0.0) / 1000, attrs)
            for kind in ("input", "output"):
                count = tier.get(f"{kind}_tokens")
                if count:
                    self.tokens.record(int(count), {**attrs, "gen_ai.token.type": kind})
            cost = float(tier.get("cost_usd") or 0.0)
            if cost > 0:
                self.cost.add(cost, attrs)

    def close(self) -> None:
        """Flush and stop a provider this object made for an exporter (one given to it is the caller's)."""
        if self._owned:
            self.meter_provider.shutdown()
