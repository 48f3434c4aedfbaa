"""Duplicates of a firing alert grouped into one incident: webhooks re-send, storms repeat."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .alerts import SEVERITIES, Alert


@dataclass(slots=True)
class AlertGroup:
    """Every copy of one alert (same fingerprint); the group's severity is its most severe copy."""

    fingerprint: str
    alerts: list[Alert] = field(default_factory=list)

    @property
    def first(self) -> Alert:
        return self.alerts[0]

    @property
    def severity(self) -> str:
        return min((a.severity for a in self.alerts), key=SEVERITIES.index)

    @property
    def firing(self) -> bool:
        return self.alerts[-1].status == "firing"  # the latest copy says whether it still fires

    @property
    def count(self) -> int:
        return len(self.alerts)


def group_alerts(alerts: Iterable[Alert]) -> list[AlertGroup]:
    """Groups in order of first arrival; most severe first among equals is the caller's sort to make."""
    groups: dict[str, AlertGroup] = {}
    for alert in alerts:
        groups.setdefault(alert.fingerprint, AlertGroup(alert.fingerprint)).alerts.append(alert)
    return list(groups.values())
