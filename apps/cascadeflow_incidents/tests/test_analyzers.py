"""Analyzers: each check states a finding with its evidence, and knows a recovered signal from a live one."""

from __future__ import annotations

from cascadeflow_incidents.analyzers import Observations, analyze, observe
from cascadeflow_incidents.analyzers.metrics import baseline_deviation


def _obs(**sources) -> Observations:
    obs = Observations()
    for source, data in sources.items():
        observe(obs, source, f"test_{source}", data)
    return obs


def _pod(name, *, ready=True, restarts=0, state=None, phase="Running", **extra) -> dict:
    return {"name": name, "phase": phase, "containers": [{"name": "c", "ready": ready, "restart_count": restarts,
                                                          "state": state or {"running": True}}], **extra}


def _by_check(findings) -> dict:
    return {f.check: f for f in findings}


def test_exit_code_137_on_a_failing_pod_is_an_active_oom_kill_citing_the_pod() -> None:
    found = _by_check(analyze(_obs(pods={"pods": [_pod("api-7f-abc", ready=False, restarts=4, state={
        "waiting": True, "reason": "CrashLoopBackOff", "message": "last terminated: exit_code=137"})]})))
    oom = found["oom_killed"]
    assert oom.active and oom.category == "resource_exhaustion" and "exit code 137" in oom.statement
    assert oom.evidence[0].kind == "test_pods" and "api-7f-abc" in oom.evidence[0].quote


def test_an_event_about_a_pod_that_is_healthy_now_is_a_recovered_signal() -> None:
    obs = _obs(pods={"pods": [_pod("api-7f-abc", restarts=1)]},
               events={"warning_events": [{"reason": "BackOff", "involved_object": "Pod/api-7f-abc", "count": 1,
                                           "message": "Back-off restarting (reason: OOMKilled, exit code: 137)"}]})
    found = _by_check(analyze(obs))
    assert not found["oom_killed"].active and "healthy now" in found["oom_killed"].statement
    assert not found["restart_recovered"].active


def test_image_pull_failure_names_the_image_and_is_a_configuration_error() -> None:
    obs = _obs(events={"warning_events": [{"reason": "Failed", "involved_object": "Pod/web-9c-x", "count": 3,
                                           "message": 'Failed to pull image "shop:v9-typo": manifest unknown'}]},
               pods={"pods": [_pod("web-9c-x", ready=False, phase="Pending", state={
                   "waiting": True, "reason": "ImagePullBackOff", "message": "Back-off pulling image"})]})
    found = _by_check(analyze(obs))
    assert found["image_pull"].category == "configuration_error" and "shop:v9-typo" in str(found["image_pull"])


def test_unschedulable_pods_split_capacity_from_placement_rules() -> None:
    def pending(message):
        return _pod("w-1", ready=False, phase="Pending", conditions=[
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}])
    capacity = _by_check(analyze(_obs(pods={"pods": [pending("0/3 nodes: 3 Insufficient memory")]})))
    placement = _by_check(analyze(_obs(pods={"pods": [pending("0/3 nodes: 3 node(s) had untolerated taint")]})))
    assert capacity["unschedulable"].category == "resource_exhaustion"
    assert placement["unschedulable"].category == "configuration_error"


def test_a_node_that_lost_its_kubelet_is_infrastructure_and_outweighs_its_pressure() -> None:
    found = analyze(_obs(node_health={"nodes": [
        {"name": "worker-b", "ready": "Unknown", "memory_pressure": "True"},
        {"name": "worker-a", "ready": "True", "memory_pressure": "False"}]}))
    assert found[0].check == "node_not_ready" and found[0].category == "infrastructure"
    assert "kubelet stopped posting" in found[0].statement and "memory_pressure" in found[0].statement


def test_dns_errors_in_logs_name_the_host_that_does_not_resolve() -> None:
    found = _by_check(analyze(_obs(logs={"logs": [
        {"message": "Error: getaddrinfo ENOTFOUND orders-db.prod.svc.cluster.local", "status": "error"}]})))
    assert found["dns_failure"].subject == "orders-db.prod.svc.cluster.local" and found["dns_failure"].active


def test_log_errors_are_history_once_every_monitor_is_ok() -> None:
    found = _by_check(analyze(_obs(
        logs={"logs": [{"message": "redis: connection refused", "status": "error"}]},
        monitors={"monitors": [{"name": "errors", "overall_state": "OK"}]})))
    assert not found["dependency_refused"].active


def test_a_terminating_pod_from_an_old_replicaset_is_not_a_current_failure() -> None:
    found = _by_check(analyze(_obs(pods={"pods": [
        _pod("api-6c-old", ready=False, restarts=2, deletion_timestamp="2026-03-02T09:00:00Z",
             state={"waiting": True, "reason": "CrashLoopBackOff"}), _pod("api-7f-new")]})))
    assert not found["terminating"].active and "ReplicaSet api-6c" in found["terminating"].statement
    assert not found["crash_loop"].active


def test_failures_confined_to_the_newest_replicaset_are_tied_to_the_rollout() -> None:
    found = _by_check(analyze(_obs(pods={"pods": [
        _pod("api-7f-a", start_time="2026-03-01T00:00:00Z"),
        _pod("api-9c-b", ready=False, start_time="2026-03-02T10:00:00Z",
             state={"waiting": True, "reason": "CrashLoopBackOff"})]})))
    assert "ReplicaSet api-9c" in found["failing_after_rollout"].statement


def test_usage_close_to_a_declared_limit_is_stated() -> None:
    obs = _obs(pod_logs={"pod_name": "w-1", "logs": "WARN heap 950Mi / 1Gi"}, pods={"pods": [_pod("w-1", ready=False)]})
    assert _by_check(analyze(obs))["near_limit"].active


def test_a_metric_is_judged_against_its_own_baseline_not_a_fixed_number() -> None:
    calm = [100 + (i % 3) for i in range(20)]
    assert abs(baseline_deviation(calm)) < 4
    assert baseline_deviation(calm[:-3] + [160, 170, 165]) > 4
    noisy = [100 + (40 if i % 2 else -40) for i in range(20)]  # the same jump is normal for a noisy series
    assert abs(baseline_deviation(noisy[:-3] + [140, 60, 140])) < 4
    obs = _obs(metrics={"series": [{"name": "http_p95_ms", "values": [[i, v] for i, v in
                                                                    enumerate(calm[:-3] + [400, 420, 410])]}]})
    assert _by_check(analyze(obs))["off_baseline"].statement.startswith("http_p95_ms is above its own baseline")


def test_nothing_abnormal_yields_only_inactive_status_findings() -> None:
    found = analyze(_obs(pods={"pods": [_pod("a-1")]}, deployments={"deployments": [
        {"name": "a", "desired": 1, "ready": 1, "available": 1, "unavailable": 0}]},
        monitors={"monitors": [{"name": "m", "overall_state": "OK"}]}))
    assert found and not any(f.active for f in found)


def test_a_missing_secret_and_a_volume_that_cannot_mount_are_named() -> None:
    found = _by_check(analyze(_obs(
        pods={"pods": [_pod("api-1", ready=False, phase="Pending", state={
            "waiting": True, "reason": "CreateContainerConfigError", "message": 'secret "db-creds" not found'})]},
        events={"warning_events": [{"reason": "FailedMount", "involved_object": "Pod/api-1", "count": 4,
                                    "message": 'MountVolume.SetUp failed: configmap "app-cfg" not found'}]})))
    assert found["bad_container_spec"].category == "configuration_error" and "db-creds" in str(found)
    assert found["missing_volume_source"].active


def test_an_event_whose_message_says_it_resolved_is_history_even_on_a_failing_pod() -> None:
    found = _by_check(analyze(_obs(
        pods={"pods": [_pod("api-1", ready=False, restarts=3, state={"waiting": True, "reason": "CrashLoopBackOff"})]},
        events={"warning_events": [{"reason": "FailedMount", "involved_object": "Pod/api-1", "count": 1,
                                    "message": "MountVolume.SetUp failed: transient, retried successfully"}]})))
    assert not found["volume_failure"].active and "says it resolved" in found["volume_failure"].statement
    assert found["crash_loop"].active


def test_evictions_certificates_and_bad_records_have_their_categories() -> None:
    evicted = _by_check(analyze(_obs(events={"warning_events": [
        {"reason": "Evicted", "involved_object": "Pod/w-1", "message": "The node was low on resource: memory."}]})))
    assert evicted["evicted"].category == "resource_exhaustion"
    logs = _by_check(analyze(_obs(logs={"logs": [
        {"message": "x509: certificate has expired or is not yet valid", "status": "error"},
        {"message": 'insert failed: duplicate key value violates unique constraint "orders_pkey"', "status": "error"},
    ]})))
    assert logs["certificate"].category == "configuration_error"
    assert logs["data_quality"].category == "data_quality"


def test_evidence_of_an_unknown_kind_is_read_as_log_lines_and_series() -> None:
    obs = Observations()
    observe(obs, None, "rds_performance", {"instance": "orders-db", "events": [
        {"message": "too many connections for role app", "severity": "ERROR"}],
        "cpu": {"datapoints": [[i, 20 + i % 2] for i in range(15)] + [[15, 95], [16, 96], [17, 97]]}})
    found = _by_check(analyze(obs))
    assert found["dependency_refused"].evidence[0].kind == "rds_performance" and found["dependency_refused"].active
    assert found["off_baseline"].evidence[0].kind == "rds_performance"


def test_events_that_are_not_kubernetes_events_are_read_as_log_lines() -> None:
    obs = Observations()
    observe(obs, "events", "db_events", {"events": [{"message": "x509: certificate has expired", "type": "Error"}]})
    assert obs.events == [] and _by_check(analyze(obs))["certificate"].evidence[0].kind == "db_events"
