"""The demo's alert storm: recorded scenarios replayed as Alertmanager webhook payloads, as each scenario's
alert would fire in several clusters at once, followed by Alertmanager's re-sends of what still fires.

The payloads go through the same intake as a real webhook (`parse_payload`), and the copies of one alert
are grouped by `group_alerts`; each group becomes one incident, investigated against the evidence of the
scenario it replays."""

from __future__ import annotations

import string
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

from cascadeflow import InvalidRequestError

from .intake import (
    SEVERITIES,
    Alert,
    AlertGroup,
    Scenario,
    find_scenarios,
    group_alerts,
    load_scenario,
    parse_payload,
)

RECEIVER = "incident-agent"


@dataclass(frozen=True, slots=True, kw_only=True)
class StormIncident:
    """One incident of the storm: the grouped copies of one alert from one cluster, and the scenario
    whose recorded evidence answers the tools."""

    incident_id: str
    group: AlertGroup
    scenario: Scenario

    @property
    def alert(self) -> Alert:
        return self.group.alerts[-1]  # the latest copy says whether it still fires

    @property
    def severity(self) -> str:
        return self.group.severity


def cluster_names(count: int) -> list[str]:
    if not 1 <= count <= len(string.ascii_lowercase):
        raise InvalidRequestError(f"the storm needs 1 to 26 clusters, got {count}")
    return [f"prod-{letter}" for letter in string.ascii_lowercase[:count]]


def webhook(alert: Alert, cluster: str, *, at: datetime) -> dict[str, Any]:
    """An Alertmanager (version 4) webhook notification carrying `alert` as fired in `cluster`."""
    labels = {**alert.labels, "alertname": alert.name, "cluster": cluster}
    starts = at.isoformat(timespec="seconds").replace("+00:00", "Z")
    entry = {"status": alert.status, "labels": labels, "annotations": dict(alert.annotations),
             "startsAt": alert.starts_at or starts,
             "endsAt": starts if alert.status == "resolved" else "0001-01-01T00:00:00Z",
             "generatorURL": f"http://prometheus.{cluster}.example/graph"}
    return {"version": "4", "groupKey": f'{{}}:{{alertname="{alert.name}", cluster="{cluster}"}}',
            "status": alert.status, "receiver": RECEIVER, "groupLabels": {"alertname": alert.name},
            "commonLabels": labels, "commonAnnotations": dict(alert.annotations),
            "externalURL": f"http://alertmanager.{cluster}.example", "alerts": [entry]}


def sample_scenarios() -> AbstractContextManager[Path]:
    """The recorded scenarios shipped in the package's data folder, as a folder on disk while the `with` block
    runs: an installed wheel holds them as plain files, so that is the folder itself."""
    return as_file(files(__package__).joinpath("data", "scenarios"))


def load_scenarios(folder: str | Path | None = None) -> list[Scenario]:
    """Every scenario under `folder` (default: the shipped samples), read into memory."""
    with sample_scenarios() if folder is None else nullcontext(Path(folder)) as root:
        scenarios = [load_scenario(path) for path in find_scenarios(root)]
    if not scenarios:
        raise InvalidRequestError(f"no scenario (a folder with alert.json) under {folder or 'the shipped samples'}")
    return scenarios


def storm_payloads(scenarios: Sequence[Scenario], clusters: Sequence[str], *, start: datetime | None = None,
                   resend: bool = True) -> list[tuple[Scenario, dict[str, Any]]]:
    """Every webhook of the storm in arrival order, each with the scenario it replays: one notification per
    scenario and cluster, cluster after cluster, then (with `resend`) Alertmanager's repeat notification of
    every alert still firing."""
    start = start or datetime.now(UTC)
    waves = [[(s, c) for c in clusters for s in scenarios]]
    if resend:
        waves.append([(s, c) for c in clusters for s in scenarios if s.alert.status == "firing"])
    out, step = [], 0
    for wave in waves:
        for scenario, cluster in wave:
            out.append((scenario, webhook(scenario.alert, cluster, at=start + timedelta(seconds=step))))
            step += 1
    return out


def incidents_of(payloads: Sequence[tuple[Scenario, dict[str, Any]]]) -> tuple[list[Alert], list[StormIncident]]:
    """(every alert received, the incidents they group into), incidents most severe first, then in order
    of arrival. Copies are grouped per replayed scenario: two scenarios may share an alert's labels."""
    received: list[Alert] = []
    by_scenario: dict[str, tuple[Scenario, list[Alert]]] = {}
    for scenario, payload in payloads:
        alerts = parse_payload(payload)
        received += alerts
        by_scenario.setdefault(scenario.scenario_id, (scenario, []))[1].extend(alerts)
    incidents = []
    for scenario, alerts in by_scenario.values():
        for group in group_alerts(alerts):
            cluster = group.first.labels.get("cluster", "")
            incidents.append(StormIncident(incident_id=f"{scenario.scenario_id}.{cluster}", group=group,
                                           scenario=scenario))
    arrival = {id(a): i for i, a in enumerate(received)}
    incidents.sort(key=lambda inc: (SEVERITIES.index(inc.severity), arrival[id(inc.group.first)]))
    return received, incidents
