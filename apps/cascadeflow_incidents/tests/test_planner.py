"""The planner: state first, guided by the alert's words; follow-ups from findings; every source once."""

from __future__ import annotations

from cascadeflow_incidents.analyzers import Evidence, Finding, Observations, observe
from cascadeflow_incidents.intake import parse_payload
from cascadeflow_incidents.planner import next_plan

ALL = ["list_pods", "get_events", "list_deployments", "get_node_health", "get_pod_logs", "search_logs",
       "query_monitors", "query_metrics", "read_evidence"]


def _alert(summary: str):
    return parse_payload({"alerts": [{"labels": {"alertname": "Custom"}, "annotations": {"summary": summary}}]})[0]


def _tools(plan) -> list[str]:
    return [s.tool for s in plan.steps]


def test_the_first_round_reads_state_and_what_the_alert_points_at() -> None:
    assert _tools(next_plan(1, _alert("pods Pending, cannot schedule"), Observations(), [], ALL, set(), [])) == \
        ["list_pods", "get_events", "get_node_health"]
    assert _tools(next_plan(1, _alert("5xx error rate at 12%"), Observations(), [], ALL, set(), [])) == \
        ["list_pods", "get_events", "search_logs", "query_monitors"]
    only_logs = next_plan(1, _alert("error rate high"), Observations(), [], ["search_logs"], set(), [])
    assert _tools(only_logs) == ["search_logs"]  # a tool the backend cannot answer is not planned


def test_the_second_round_follows_a_failing_pod_and_reads_every_remaining_source_once() -> None:
    obs = Observations()
    observe(obs, "pods", "k8s_pods", {"pods": [{"name": "w-1", "phase": "Running",
                                                "containers": [{"ready": False, "restart_count": 3}]}]})
    found = [Finding(check="restarting", subject="Pod/w-1", statement="w-1 restarts", category=None,
                     weight=0.4, active=True, evidence=(Evidence("k8s_pods", "w-1"),))]
    plan = next_plan(2, _alert("w-1 restarting"), obs, found, ALL, {"list_pods", "get_events"}, ["redis_info"])
    assert plan.steps[0].tool == "get_pod_logs" and plan.steps[0].arguments == {"pod": "w-1"}
    assert set(_tools(plan)) == {"get_pod_logs", "list_deployments", "get_node_health", "search_logs",
                                 "query_monitors", "query_metrics", "read_evidence"}
    assert plan.steps[-1].arguments == {"kind": "redis_info"} and "no dedicated tool" in plan.reason


def test_the_third_round_only_follows_up_and_an_empty_plan_ends_the_loop() -> None:
    called = set(ALL) - {"get_pod_logs"}
    assert next_plan(3, _alert("x"), Observations(), [], ALL, called, ["redis_info"]).steps == ()
