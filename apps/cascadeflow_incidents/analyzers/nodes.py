"""Node checks: a node not Ready (Unknown: the kubelet stopped posting status), pressure conditions, and
a node whose free allocatable resources are far below its peers'."""

from __future__ import annotations

from collections.abc import Iterator

from .findings import Evidence, Finding, Observations, short

_PRESSURES = ("memory_pressure", "disk_pressure", "pid_pressure")


def _node_findings(node: dict, kind: str) -> Iterator[Finding]:
    name, ready = node.get("name", "?"), str(node.get("ready"))
    pressures = [p for p in _PRESSURES if str(node.get(p)).lower() == "true"]
    quote = Evidence(kind, short(f"node {name}: ready={ready} " + " ".join(f"{p}={node.get(p)}" for p in _PRESSURES)))
    if ready.lower() != "true":
        why = ("Ready=Unknown: the kubelet stopped posting node status (heartbeat lost)" if ready == "Unknown"
               else f"Ready={ready}: the kubelet reports the node not ready")
        extra = f"; also {', '.join(pressures)}" if pressures else ""
        yield Finding(check="node_not_ready", subject=f"Node/{name}",
                      statement=f"node {name} is {why}{extra}; its pods are unreachable",
                      category="infrastructure", weight=0.95, active=True, evidence=(quote,),
                      remediation="cordon and drain the node, check the kubelet "
                                  "and the instance; replace the node if needed")
    elif pressures:
        yield Finding(check="node_pressure", subject=f"Node/{name}",
                      statement=f"node {name} reports {', '.join(pressures)}", category="resource_exhaustion",
                      weight=0.5, active=True, evidence=(quote,),
                      remediation="find the pods using the resource on that node; add capacity or evict")


def analyze_nodes(obs: Observations) -> list[Finding]:
    kind = obs.kind("node_health")
    return [f for node in obs.nodes for f in _node_findings(node, kind)]
