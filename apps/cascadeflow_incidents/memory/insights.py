"""Reflection insights across remembered incidents: recurring categories, services that keep failing,
deploy-related incidents and fixes that did not work, each with the incidents it rests on."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from .store import IncidentRecord

_DEPLOY_WORDS = ("deploy", "rollout", "release", "revision", "rolled back", "rollback", "new version")


@dataclass(frozen=True, slots=True, kw_only=True)
class Insight:
    kind: str  # "recurring_category" | "recurring_service" | "deploy_related" | "fix_failed"
    statement: str
    incidents: tuple[str, ...]  # the evidence: ids of the incidents it rests on


def _recurring(records: Sequence[IncidentRecord], key, kind: str, label: str, minimum: int) -> list[Insight]:
    groups: dict[str, list[str]] = defaultdict(list)
    for r in records:
        for value in key(r):
            groups[value].append(r.id)
    return [Insight(kind=kind, statement=f"{label} {value!r} recurs in {len(ids)} incidents",
                    incidents=tuple(ids))
            for value, ids in sorted(groups.items(), key=lambda kv: -len(kv[1])) if len(ids) >= minimum]


def reflect(records: Sequence[IncidentRecord], *, minimum: int = 2) -> list[Insight]:
    """Patterns seen at least `minimum` times; healthy (false-alarm) incidents count as their own pattern."""
    insights = _recurring(records, lambda r: [r.category], "recurring_category", "root-cause category", minimum)
    insights += _recurring(records, lambda r: list(r.services), "recurring_service", "service", minimum)
    deploys = [r.id for r in records if r.deploy_version or any(
        w in f"{r.root_cause} {r.symptoms}".lower() for w in _DEPLOY_WORDS)]
    if len(deploys) >= minimum:
        insights.append(Insight(kind="deploy_related", statement=f"{len(deploys)} of {len(records)} "
                                                                 "incidents followed a deploy or rollout",
                                incidents=tuple(deploys)))
    failed = [r.id for r in records if r.fix_worked is False]
    if failed:
        insights.append(Insight(kind="fix_failed",
                                statement=f"{len(failed)} remediation(s) did not work the first time",
                                incidents=tuple(failed)))
    return insights
