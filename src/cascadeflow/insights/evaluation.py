"""Event-level scores of an anomaly detector on labelled incidents: precision, recall, F1, delay, false
alerts per week.

An alert counts for an incident when it comes between the incident's start and `grace` buckets after its
end; the first such alert detects it (its delay is counted from the start). Any other alert is false.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from cascadeflow.insights.series import Incident


@dataclass(frozen=True, slots=True, kw_only=True)
class EventScore:
    incidents: int
    detected: int
    alerts: int
    false_alerts: int
    weeks: float
    delays: tuple[int, ...]  # buckets from each detected incident's start to its first alert

    @property
    def recall(self) -> float:
        return self.detected / self.incidents if self.incidents else 1.0

    @property
    def precision(self) -> float:
        return (self.alerts - self.false_alerts) / self.alerts if self.alerts else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def false_alerts_per_week(self) -> float:
        return self.false_alerts / self.weeks if self.weeks else 0.0

    @property
    def median_delay(self) -> float | None:
        return statistics.median(self.delays) if self.delays else None

    def __add__(self, other: EventScore) -> EventScore:
        return EventScore(
            incidents=self.incidents + other.incidents,
            detected=self.detected + other.detected,
            alerts=self.alerts + other.alerts,
            false_alerts=self.false_alerts + other.false_alerts,
            weeks=self.weeks + other.weeks,
            delays=self.delays + other.delays,
        )


def score_alerts(alerts: Sequence[int], incidents: Sequence[Incident], *, weeks: float, grace: int) -> EventScore:
    """Score alert bucket indices (one per alert, any order) against the incidents."""
    first: dict[int, int] = {}
    false_alerts = 0
    for at in sorted(alerts):
        match = next((k for k, inc in enumerate(incidents) if inc.start <= at <= inc.end + grace), None)
        if match is None:
            false_alerts += 1
        else:
            first.setdefault(match, at)
    delays = tuple(first[k] - incidents[k].start for k in sorted(first))
    return EventScore(incidents=len(incidents), detected=len(first), alerts=len(alerts),
                      false_alerts=false_alerts, weeks=weeks, delays=delays)
