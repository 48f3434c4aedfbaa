"""Monitor and metric checks: monitors in alert (symptoms), all monitors OK (support for a healthy
verdict), and a metric far from its own baseline (robust z-score of the latest samples against the
series' earlier samples: the threshold is relative to each series' own spread, not a fixed number)."""

from __future__ import annotations

import statistics
from collections.abc import Iterator

from .findings import Evidence, Finding, Observations, short

MIN_BASELINE_SAMPLES = 6
ROBUST_Z = 4.0  # |x - median| / (1.4826 * MAD): 4 robust sigmas is rare noise under any distribution shape


def _monitor_findings(obs: Observations) -> Iterator[Finding]:
    kind = obs.kind("monitors")
    alerting = [m for m in obs.monitors if str(m.get("overall_state", "")).lower() in ("alert", "warn")]
    for m in alerting:
        yield Finding(check="monitor_alerting", subject=f"Monitor/{m.get('name')}",
                      statement=f"monitor '{m.get('name')}' is {m.get('overall_state')}: "
                                f"{short(m.get('message', ''), 120)}",
                      category=None, weight=0.3, active=True,
                      evidence=(Evidence(kind, short(f"{m.get('name')}: {m.get('overall_state')} "
                                                     f"({m.get('query', '')})")),))
    if obs.monitors and not alerting:
        states = "; ".join(f"{m.get('name')}: {m.get('overall_state')}" for m in obs.monitors)
        yield Finding(check="monitors_ok", subject="monitors",
                      statement=f"all {len(obs.monitors)} monitors are OK", category=None, weight=0.1,
                      active=False, evidence=(Evidence(kind, short(states)),))


def series_values(series: dict) -> list[float]:
    samples = next((series[k] for k in ("values", "samples", "datapoints", "points") if series.get(k)), [])
    out = []
    for s in samples:
        raw = s[1] if isinstance(s, (list, tuple)) and len(s) > 1 else s.get("value") if isinstance(s, dict) else s
        try:
            out.append(float(raw))
        except (TypeError, ValueError):
            continue
    return out


def baseline_deviation(values: list[float], recent: int = 3) -> float | None:
    """Robust z of the mean of the last `recent` samples against the samples before them."""
    base, tail = values[:-recent], values[-recent:]
    if len(base) < MIN_BASELINE_SAMPLES or not tail:
        return None
    median = statistics.median(base)
    mad = statistics.median(abs(v - median) for v in base)
    spread = 1.4826 * mad or (statistics.pstdev(base) or abs(median) * 0.01 or 1e-9)
    return (statistics.fmean(tail) - median) / spread


def _metric_findings(obs: Observations) -> Iterator[Finding]:
    kind = obs.kind("metrics")
    for series in obs.metrics:
        values = series_values(series)
        z = baseline_deviation(values)
        if z is None or abs(z) < ROBUST_Z:
            continue
        name = series.get("name") or series.get("metric") or "metric"
        base = statistics.median(values[:-3])
        yield Finding(check="off_baseline", subject=f"Metric/{name}",
                      statement=f"{name} is {'above' if z > 0 else 'below'} its own baseline: "
                                f"latest {values[-1]:g} vs median {base:g} ({z:+.1f} robust sigmas)",
                      category=None, weight=0.35, active=True,
                      evidence=(Evidence(series.get("evidence_kind") or kind,
                                         short(f"{name}: baseline median {base:g}, latest {values[-3:]}")),))


def analyze_metrics(obs: Observations) -> list[Finding]:
    return list(_monitor_findings(obs)) + list(_metric_findings(obs))
