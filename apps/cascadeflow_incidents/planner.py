"""Which tools to call next: the cluster state first (guided by the alert's words); then the follow-ups the
findings ask for (a failing pod's logs, node health for scheduling or node signals, deployments for pod
or rollout trouble) and every source not read yet, once; then the follow-ups of what that found."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .analyzers import Finding, Observations
from .analyzers.state import FAILING, pod_health
from .intake import Alert

# Alert words that point at a source; generic SRE vocabulary, not any one alerting setup's names.
_HINTS = (
    (re.compile(r"\bnode|kubelet|notready", re.IGNORECASE), "get_node_health"),
    (re.compile(r"deploy|rollout|replica|scal(e|ing)|revision|release", re.IGNORECASE), "list_deployments"),
    (re.compile(r"error rate|5\d\d|latency|timeout|exception|errors?\b|dns|connection", re.IGNORECASE), "search_logs"),
    (re.compile(r"error rate|5\d\d|latency|slo|burn", re.IGNORECASE), "query_monitors"),
    (re.compile(r"pending|schedul|capacity|insufficient", re.IGNORECASE), "get_node_health"),
)


# Sources read without arguments; pod logs need a pod and come from the follow-ups.
_EVIDENCE_TOOLS = ("list_pods", "get_events", "list_deployments", "get_node_health", "search_logs",
                   "query_monitors", "query_metrics")


@dataclass(frozen=True, slots=True)
class Step:
    tool: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Plan:
    steps: tuple[Step, ...]
    reason: str


def _first_round(alert: Alert, available: set[str]) -> Plan:
    wanted = ["list_pods", "get_events"]
    # what the alert says happened, not its label names or free-form fields such as error details
    text = " ".join([alert.name, alert.title, alert.annotations.get("summary", ""),
                     alert.annotations.get("description", "")])
    wanted += [tool for pattern, tool in _HINTS if pattern.search(text)]
    tools = [t for t in dict.fromkeys(wanted) if t in available]
    return Plan(tuple(Step(t, {}) for t in tools), "current cluster state first, plus the sources the alert's "
                "words point at")


def _follow_ups(obs: Observations, findings: Sequence[Finding], available: set[str]) -> list[tuple[Step, str]]:
    out: list[tuple[Step, str]] = []
    failing = [p["name"] for p in obs.pods if p.get("name") and pod_health(obs, p["name"]) == FAILING]
    if failing and "get_pod_logs" in available:
        out.append((Step("get_pod_logs", {"pod": failing[0]}), f"pod {failing[0]} is failing: read its logs"))
    checks = {f.check for f in findings}
    if checks & {"unschedulable", "node_not_ready", "pod_lost", "node_pressure"}:
        out.append((Step("get_node_health", {}), "scheduling or node signals: check the nodes"))
    if any(f.subject.startswith(("Pod/", "ReplicaSet/", "Deployment/")) for f in findings) or failing:
        out.append((Step("list_deployments", {}), "pod or rollout signals: compare desired and ready replicas"))
    if any(not f.active for f in findings):
        out.append((Step("search_logs", {}), "signals look recovered: look for what resolved them"))
    if not any(f.active and f.category for f in findings):
        out += [(Step(t, {}), "no active cause named yet: widen the search") for t in
                ("search_logs", "query_monitors", "query_metrics", "get_node_health", "list_deployments")]
    return out


def next_plan(loop: int, alert: Alert, obs: Observations, findings: Sequence[Finding], available: Sequence[str],
              called: set[str], unclaimed: Sequence[str]) -> Plan:
    """The next round of tool calls; an empty plan ends the investigation."""
    have = set(available)
    if loop == 1:
        return _first_round(alert, have)
    steps, reasons = [], []
    for step, reason in _follow_ups(obs, findings, have):
        if step.tool in have and step.tool not in called and step.tool not in {s.tool for s in steps}:
            steps.append(step)
            reasons.append(reason)
    if loop == 2:
        rest = [t for t in _EVIDENCE_TOOLS if t in have and t not in called and t not in {s.tool for s in steps}]
        if rest:  # every remaining source is read once: a cause can sit where the alert did not point
            steps += [Step(t, {}) for t in rest]
            reasons.append("the remaining sources, read once to confirm or widen")
        for kind in unclaimed:  # evidence no dedicated tool reads is still read once
            steps.append(Step("read_evidence", {"kind": kind}))
            reasons.append(f"evidence kind {kind} has no dedicated tool")
    return Plan(tuple(steps), "; ".join(dict.fromkeys(reasons)))
