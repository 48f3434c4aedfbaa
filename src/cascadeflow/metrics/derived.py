"""Ratios computed at scrape time from the counters (drafter acceptance rate, savings ratio).

They are derived from the summed counters rather than kept as gauges in each process, so under several
worker processes the served ratio is the ratio of the totals, not one worker's figure.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from cascadeflow.metrics import names


def _sums(samples: list[Any], sample_name: str, by: tuple[str, ...]) -> dict[tuple[str, ...], float]:
    totals: dict[tuple[str, ...], float] = defaultdict(float)
    for sample in samples:
        if sample.name == sample_name:
            totals[tuple(sample.labels.get(k, "") for k in by)] += sample.value
    return totals


class DerivedMetrics:
    """A prometheus-client collector over `source` (a registry or the multiprocess collector)."""

    def __init__(self, source: Any):
        self.source = source

    def describe(self) -> list[Any]:
        return []  # nothing to check at registration: the names are unique to this collector

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        samples = [sample for family in self.source.collect() for sample in family.samples]
        acceptance = GaugeMetricFamily(names.DRAFTER_ACCEPTANCE,
                                       "Share of cascade drafts accepted, since start, by drafter model",
                                       labels=("model", "provider"))
        decisions = _sums(samples, f"{names.DRAFTER_DECISIONS}_total", ("model", "provider", "decision"))
        drafters = {key[:2] for key in decisions}
        for model, provider in sorted(drafters):
            accepted = decisions.get((model, provider, "accepted"), 0.0)
            escalated = decisions.get((model, provider, "escalated"), 0.0)
            if accepted + escalated > 0:
                acceptance.add_metric([model, provider], accepted / (accepted + escalated))
        yield acceptance
        savings = GaugeMetricFamily(names.SAVINGS_RATIO,
                                    "1 - actual cost / strongest-tier cost over the calls that have a baseline")
        baseline = sum(_sums(samples, f"{names.BASELINE_COST}_total", ()).values())
        compared = sum(_sums(samples, f"{names.COMPARED_COST}_total", ()).values())
        if baseline > 0:
            savings.add_metric([], 1.0 - compared / baseline)
        yield savings
