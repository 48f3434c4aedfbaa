"""Intake: webhook payloads and scenario folders become normalised alerts; duplicates group."""

from __future__ import annotations

import json

import pytest

from cascadeflow import InvalidRequestError
from cascadeflow_incidents.intake import (
    group_alerts,
    load_scenario,
    normalise_severity,
    parse_payload,
)

from .samples import SCENARIOS

ALERTMANAGER = {
    "version": "4", "status": "firing", "receiver": "oncall",
    "commonLabels": {"namespace": "shop", "severity": "warning"},
    "commonAnnotations": {"runbook_url": "https://runbooks/x"},
    "alerts": [
        {"status": "firing", "labels": {"alertname": "KubePodCrashLooping", "pod": "web-1", "severity": "critical"},
         "annotations": {"summary": "web-1 crash looping"}, "startsAt": "2026-03-02T10:00:00Z"},
        {"status": "resolved", "labels": {"alertname": "KubeNodeNotReady", "node": "worker-b"},
         "annotations": {"description": "worker-b not ready"}},
    ],
}


def test_severity_spellings_map_to_one_scale() -> None:
    assert [normalise_severity(s) for s in ("critical", "Warning", "P1", "info", "sev1", "")] == \
        ["P0", "P2", "P1", "INFO", "P0", "P3"]


def test_alertmanager_payload_becomes_one_alert_per_entry_with_group_labels_merged() -> None:
    first, second = parse_payload(ALERTMANAGER)
    assert (first.name, first.severity, first.status, first.source) == ("KubePodCrashLooping", "P0", "firing",
                                                                         "alertmanager")
    assert first.labels["namespace"] == "shop" and first.annotations["runbook_url"] == "https://runbooks/x"
    assert first.title == "web-1 crash looping" and first.starts_at == "2026-03-02T10:00:00Z"
    assert (second.severity, second.status, second.title) == ("P2", "resolved", "worker-b not ready")


def test_grafana_unified_and_legacy_payloads_are_recognised() -> None:
    unified = {**ALERTMANAGER, "orgId": 1, "title": "[FIRING:1]", "state": "alerting"}
    assert {a.source for a in parse_payload(unified)} == {"grafana"}
    legacy = parse_payload({"ruleName": "High latency", "state": "alerting", "message": "p95 2s",
                            "tags": {"severity": "high", "service": "api"}})
    assert legacy[0].name == "High latency" and legacy[0].severity == "P1" and legacy[0].service == "api"


def test_duplicates_of_a_firing_alert_group_under_one_fingerprint() -> None:
    copy = json.loads(json.dumps(ALERTMANAGER))
    copy["alerts"][0]["labels"]["severity"] = "warning"
    groups = group_alerts(parse_payload(ALERTMANAGER) + parse_payload(copy))
    assert [g.count for g in groups] == [2, 2]
    assert groups[0].severity == "P0"  # the most severe copy wins
    assert groups[1].firing is False


@pytest.mark.parametrize("payload, words", [
    ([], "JSON object"), ({"alerts": []}, "non-empty 'alerts'"), ({"foo": 1}, "unrecognised"),
    ({"alerts": ["x"]}, "alerts[0] must be an object"), ({"title": "t", "commonLabels": "x"}, "commonLabels"),
])
def test_bad_payloads_raise_a_typed_error_naming_the_problem(payload, words) -> None:
    with pytest.raises(InvalidRequestError, match=words.replace("[", r"\[").replace("]", r"\]")):
        parse_payload(payload)


def test_scenario_inherits_base_evidence_and_overrides_its_own() -> None:
    scenario = load_scenario(SCENARIOS / "crash-defect")
    assert scenario.scenario_id == "crash-defect" and scenario.answer["root_cause_category"] == "code_defect"
    assert set(scenario.evidence) == {"k8s_pods", "k8s_events", "k8s_deployments", "app_logs", "app_monitors",
                                      "k8s_pod_logs"}
    assert len(scenario.evidence["k8s_pods"]["pods"]) == 2 and scenario.alert.severity == "P0"


def test_available_evidence_narrows_what_the_base_lends(tmp_path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (base / "alert.json").write_text(json.dumps({"title": "b", "commonLabels": {"alertname": "B"}}))
    (base / "pods.json").write_text("{}")
    (base / "logs.json").write_text("{}")
    child = tmp_path / "child"
    child.mkdir()
    (child / "alert.json").write_text(json.dumps({"title": "c", "commonLabels": {"alertname": "C"}}))
    (child / "scenario.yml").write_text("base: base\navailable_evidence: [pods]\n")
    assert set(load_scenario(child).evidence) == {"pods"}


def test_broken_scenarios_name_the_file_at_fault(tmp_path) -> None:
    with pytest.raises(InvalidRequestError, match="no alert.json"):
        load_scenario(tmp_path)
    (tmp_path / "alert.json").write_text("{not json")
    with pytest.raises(InvalidRequestError, match="alert.json: not valid JSON"):
        load_scenario(tmp_path)
    (tmp_path / "alert.json").write_text(json.dumps({"title": "t", "commonLabels": {}}))
    (tmp_path / "scenario.yml").write_text(f"base: {tmp_path.name}\n")
    with pytest.raises(InvalidRequestError, match="cycle"):
        load_scenario(tmp_path)


def test_the_same_alert_from_two_clusters_is_two_incidents() -> None:
    copies = []
    for cluster in ("east", "west"):
        payload = json.loads(json.dumps(ALERTMANAGER))
        payload["commonLabels"]["cluster"] = cluster
        copies += parse_payload(payload)
    assert len(group_alerts(copies)) == 2 * len(group_alerts(parse_payload(ALERTMANAGER)))
