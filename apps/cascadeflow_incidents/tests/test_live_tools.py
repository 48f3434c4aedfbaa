"""The live backend against a loopback server speaking the Kubernetes, Prometheus and Loki APIs."""

from __future__ import annotations

import pytest

from cascadeflow import ConfigurationError
from cascadeflow_incidents.analyzers import Observations, analyze, observe
from cascadeflow_incidents.tools import LiveConfig, LiveSources, live_toolbox

from .sre_loopback import NS, SreLoopback


@pytest.fixture(scope="module")
def server():
    with SreLoopback() as s:
        yield s


def _box(server, **kw):
    config = LiveConfig(kubernetes_url=server.url, kubernetes_token="t0ken", namespace=NS,
                        prometheus_url=server.url, loki_url=server.url, **kw)
    return live_toolbox(config)


async def test_kubernetes_reads_become_the_recorded_shapes_and_analyzers_read_them(server) -> None:
    box = _box(server)
    obs = Observations()
    for tool, args in (("list_pods", {}), ("get_events", {}), ("list_deployments", {}), ("get_node_health", {}),
                       ("get_pod_logs", {"pod": "web-7c-x"})):
        result = await box.call(tool, args)
        assert result.error is None, result.error
        observe(obs, box.get(tool).declaration.reads, result.evidence_kind, result.data)
    pod = obs.pods[0]
    assert pod["containers"][0]["last_state"]["exit_code"] == 137 and pod["phase"] == "Running"
    assert obs.events[0]["involved_object"] == "Pod/web-7c-x" and obs.deployments[0]["desired"] == 2
    findings = {f.check: f for f in analyze(obs)}
    assert findings["oom_killed"].active and findings["oom_log"].active
    paths = [p for p, _, _ in server.requests]
    assert f"/api/v1/namespaces/{NS}/events" in paths
    events_query = next(q for p, q, _ in server.requests if p.endswith("/events"))
    assert events_query == {"fieldSelector": "type=Warning"}
    assert all(h.get("authorization") == "Bearer t0ken" for p, _, h in server.requests if p.startswith("/api"))


async def test_prometheus_alerts_and_ranges_and_loki_streams(server) -> None:
    box = _box(server)
    monitors = await box.call("query_monitors")
    assert monitors.data["monitors"][0] == {"name": "KubePodCrashLooping", "overall_state": "Alert",
                                            "message": "web crash looping", "query": "",
                                            "labels": {"alertname": "KubePodCrashLooping", "namespace": NS}}
    metrics = await box.call("query_metrics", {"query": "container_memory_working_set_bytes"})
    obs = Observations()
    observe(obs, "metrics", metrics.evidence_kind, metrics.data)
    assert {f.check for f in analyze(obs)} == {"off_baseline"}
    logs = await box.call("search_logs", {"service": "web", "query": "refused"})
    assert logs.data["logs"][0]["message"] == "redis: connect: connection refused"
    loki_query = next(q for p, q, _ in server.requests if p.startswith("/loki"))["query"]
    assert loki_query == '{service_name="web"} |= "refused"'


async def test_an_unreachable_or_failing_source_is_an_error_result(server) -> None:
    box = live_toolbox(LiveConfig(prometheus_url=server.url + "/broken", kubernetes_url="http://127.0.0.1:9"))
    failing = await box.call("query_monitors")
    assert failing.data is None and "503" in failing.error
    refused = await box.call("list_pods")
    assert refused.data is None and "ConnectError" in refused.error
    missing = await box.call("query_metrics")
    assert "needs query=" in missing.error


def test_a_live_backend_needs_at_least_one_source() -> None:
    with pytest.raises(ConfigurationError, match="at least one of"):
        LiveSources(LiveConfig())


def test_the_cli_investigates_an_alertmanager_payload_against_live_sources(server, tmp_path) -> None:
    import json

    from typer.testing import CliRunner

    from cascadeflow_incidents.cli import app

    payload = tmp_path / "alert.json"
    payload.write_text(json.dumps({"alerts": [{"labels": {"alertname": "KubePodCrashLooping", "namespace": NS,
                                                          "severity": "critical"},
                                               "annotations": {"summary": "web-7c-x crash looping"}}]}))
    result = CliRunner().invoke(app, ["investigate", str(payload), "--kubernetes", server.url, "--prometheus",
                                      server.url, "--loki", server.url, "--no-model"])
    assert result.exit_code == 0, result.output
    assert "ROOT_CAUSE_CATEGORY: resource_exhaustion" in result.output and "exit code 137" in result.output
