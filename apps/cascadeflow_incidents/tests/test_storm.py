"""The demo's alert storm: the shipped scenarios as Alertmanager webhooks from several clusters, re-sends
grouped with their originals, one incident per scenario and cluster, most severe first."""

from __future__ import annotations

import pytest

from cascadeflow import InvalidRequestError
from cascadeflow_incidents.intake import SEVERITIES, find_scenarios, parse_alertmanager
from cascadeflow_incidents.storm import (
    cluster_names,
    incidents_of,
    load_scenarios,
    sample_scenarios,
    storm_payloads,
)

from .samples import SCENARIOS


@pytest.fixture(scope="module")
def scenarios():
    return load_scenarios()


def test_the_storm_replays_the_scenarios_in_the_package_data_folder_by_default(scenarios) -> None:
    with sample_scenarios() as folder:
        assert folder.resolve() == SCENARIOS
    assert [s.path for s in scenarios] == find_scenarios(SCENARIOS) != []


def test_every_payload_is_an_alertmanager_webhook_naming_its_cluster(scenarios) -> None:
    payloads = storm_payloads(scenarios, cluster_names(2))
    for scenario, payload in payloads:
        assert payload["version"] == "4" and payload["receiver"]
        (alert,) = parse_alertmanager(payload)
        assert alert.source == "alertmanager" and alert.labels["cluster"] in cluster_names(2)
        assert (alert.name, alert.severity, alert.status) == (scenario.alert.name, scenario.alert.severity,
                                                            scenario.alert.status)


def test_resends_group_with_their_originals_into_one_incident_per_scenario_and_cluster(scenarios) -> None:
    payloads = storm_payloads(scenarios, cluster_names(3))
    firing = sum(1 for s in scenarios if s.alert.status == "firing")
    received, incidents = incidents_of(payloads)
    assert len(received) == 3 * len(scenarios) + 3 * firing
    assert len(incidents) == 3 * len(scenarios)
    assert len({i.incident_id for i in incidents}) == len(incidents)
    assert sorted(i.group.count for i in incidents) == sorted([2] * 3 * firing + [1] * 3 * (len(scenarios) - firing))
    for incident in incidents:  # each incident keeps the evidence of the scenario it replays
        assert incident.alert.name == incident.scenario.alert.name
        assert incident.incident_id.startswith(incident.scenario.scenario_id)


def test_incidents_come_most_severe_first(scenarios) -> None:
    _, incidents = incidents_of(storm_payloads(scenarios, cluster_names(2)))
    ranks = [SEVERITIES.index(i.severity) for i in incidents]
    assert ranks == sorted(ranks) and len(set(ranks)) > 1  # the shipped scenarios mix severities


def test_without_resends_each_alert_arrives_once(scenarios) -> None:
    received, incidents = incidents_of(storm_payloads(scenarios, cluster_names(1), resend=False))
    assert len(received) == len(incidents) == len(scenarios)


@pytest.mark.parametrize("count", [0, 27])
def test_a_storm_needs_between_one_and_26_clusters(count) -> None:
    with pytest.raises(InvalidRequestError, match="1 to 26 clusters"):
        cluster_names(count)
