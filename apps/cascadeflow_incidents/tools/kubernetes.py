"""Kubernetes state tools: pods, warning events, deployments, node health, pod logs (read-only)."""

from __future__ import annotations

from typing import Any

from .base import Param, Tool, ToolDeclaration
from .shaping import keep, mentions

_NAMESPACE = Param("namespace", str, "only objects in this namespace (cluster-scoped objects are kept)")

LIST_PODS = ToolDeclaration(
    "list_pods", "Pods with phase, container readiness, restart counts, waiting/terminated reasons, exit codes "
    "and conditions.", (_NAMESPACE, Param("name_contains", str, "only pods whose name contains this")),
    reads="pods")
GET_EVENTS = ToolDeclaration(
    "get_events", "Recent Warning events (reason, message, count, involved object, first/last time).",
    (_NAMESPACE, Param("involved_object", str, "only events about this object, e.g. Pod/x or a name")),
    reads="events")
LIST_DEPLOYMENTS = ToolDeclaration(
    "list_deployments", "Deployments with desired, ready, available and unavailable replicas.",
    (_NAMESPACE,), reads="deployments")
GET_NODE_HEALTH = ToolDeclaration(
    "get_node_health", "Nodes with Ready status, memory/disk/PID pressure, capacity and allocatable resources.",
    (), reads="node_health")
GET_POD_LOGS = ToolDeclaration(
    "get_pod_logs", "The recent log lines of one pod's container.",
    (Param("pod", str, "pod name"), _NAMESPACE, Param("tail", int, "last N lines (default 200)")),
    reads="pod_logs")


def _in_namespace(namespace: str | None):
    def match(item: Any) -> bool:
        ns = item.get("namespace") if isinstance(item, dict) else None
        return namespace is None or ns in (None, "", "default", namespace)
    return match


async def list_pods(backend: Any, namespace: str | None = None, name_contains: str | None = None) -> Any:
    data = keep(await backend.source(LIST_PODS, {"namespace": namespace}), _in_namespace(namespace))
    return keep(data, lambda p: name_contains is None or name_contains in str(p.get("name", "")))


async def get_events(backend: Any, namespace: str | None = None, involved_object: str | None = None) -> Any:
    data = keep(await backend.source(GET_EVENTS, {"namespace": namespace}), _in_namespace(namespace))
    return keep(data, lambda e: involved_object is None or mentions(e.get("involved_object", ""), involved_object))


async def list_deployments(backend: Any, namespace: str | None = None) -> Any:
    return keep(await backend.source(LIST_DEPLOYMENTS, {"namespace": namespace}), _in_namespace(namespace))


async def get_node_health(backend: Any) -> Any:
    return await backend.source(GET_NODE_HEALTH, {})


async def get_pod_logs(backend: Any, pod: str | None = None, namespace: str | None = None,
                       tail: int = 200) -> Any:
    data = await backend.source(GET_POD_LOGS, {"pod": pod, "namespace": namespace, "tail": tail})
    if isinstance(data, dict) and isinstance(data.get("logs"), str):
        data = {**data, "logs": "\n".join(data["logs"].splitlines()[-max(1, tail):])}
    return data


TOOLS = (Tool(LIST_PODS, list_pods), Tool(GET_EVENTS, get_events), Tool(LIST_DEPLOYMENTS, list_deployments),
         Tool(GET_NODE_HEALTH, get_node_health), Tool(GET_POD_LOGS, get_pod_logs))
