"""Is an object failing now? Events and logs are history; pods, deployments and nodes are the present.
A signal about an object that is healthy now is a recovered (inactive) signal."""

from __future__ import annotations

from .findings import Observations

HEALTHY, FAILING, TERMINATING, UNKNOWN = "healthy", "failing", "terminating", "unknown"


def replica_set_of(pod_name: str) -> str:
    """Deployment pods are named <replicaset>-<suffix>; the ReplicaSet is the name without the suffix."""
    return pod_name.rsplit("-", 1)[0] if "-" in pod_name else pod_name


def pod_is_healthy(pod: dict) -> bool:
    containers = pod.get("containers") or []
    ready = all(c.get("ready") for c in containers) if containers else False
    return pod.get("phase") in ("Running", "Succeeded") and ready


def pod_health(obs: Observations, name: str) -> str:
    pod = obs.pod(name)
    if pod is None:
        return UNKNOWN
    if pod.get("deletion_timestamp"):
        return TERMINATING
    return HEALTHY if pod_is_healthy(pod) else FAILING


def node_health(obs: Observations, name: str) -> str:
    node = next((n for n in obs.nodes if n.get("name") == name), None)
    if node is None:
        return UNKNOWN
    return HEALTHY if str(node.get("ready")).lower() == "true" else FAILING


def deployment_complete(d: dict) -> bool:
    desired = int(d.get("desired", d.get("replicas", 0)) or 0)
    return int(d.get("ready", 0) or 0) >= desired and int(d.get("unavailable", 0) or 0) == 0


def deployment_health(obs: Observations, name: str | None) -> str:
    """A named deployment, or (name None) every deployment seen."""
    found = [d for d in obs.deployments if name is None or d.get("name") == name]
    if not found:
        return UNKNOWN
    return HEALTHY if all(deployment_complete(d) for d in found) else FAILING


def object_health(obs: Observations, ref: str) -> str:
    """'Pod/x', 'Node/x', 'Deployment/x', 'ReplicaSet/x' or another kind (judged by its namespace's
    deployments, e.g. a ResourceQuota)."""
    kind, _, name = ref.partition("/")
    if not name:
        kind, name = "Pod", kind
    if kind == "Pod":
        return pod_health(obs, name)
    if kind == "Node":
        return node_health(obs, name)
    if kind == "Deployment":
        return deployment_health(obs, name)
    if kind == "ReplicaSet":
        owners = [d["name"] for d in obs.deployments if name.startswith(f"{d.get('name')}-")]
        return deployment_health(obs, owners[0]) if owners else UNKNOWN
    return deployment_health(obs, None)
