"""The live backend: the same tools over HTTP APIs, read-only (GET only): the Kubernetes API server,
the Prometheus HTTP API (alerts as monitors, range queries as metric series) and Loki (log search).
Responses are converted to the shapes the recorded evidence uses, so the analyzers read both alike."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from cascadeflow import ConfigurationError

from .base import EvidenceMissing, SourceUnavailable, ToolDeclaration


@dataclass(frozen=True, slots=True)
class LiveConfig:
    kubernetes_url: str | None = None
    kubernetes_token: str | None = field(default=None, repr=False)
    namespace: str | None = None  # default namespace for namespaced reads
    prometheus_url: str | None = None
    loki_url: str | None = None
    loki_selector: str = '{job=~".+"}'  # LogQL stream selector used when no service is given
    window_s: float = 3600.0  # how far back metrics and logs are read
    step_s: float = 60.0
    verify_tls: bool = True


def _conditions(obj: Mapping[str, Any]) -> list[dict]:
    return [{"type": c.get("type"), "status": c.get("status"), "reason": c.get("reason", ""),
             "message": c.get("message", "")} for c in (obj.get("status") or {}).get("conditions") or []]


def _container(spec: Mapping[str, Any]) -> dict:
    state = spec.get("state") or {}
    kind, detail = next(iter(state.items()), ("unknown", {}))
    last = (spec.get("lastState") or {}).get("terminated") or {}
    shaped = {kind: True, "reason": detail.get("reason", ""), "message": detail.get("message", "")}
    if "exitCode" in detail:
        shaped["exit_code"] = detail["exitCode"]
    return {"name": spec.get("name"), "ready": bool(spec.get("ready")), "restart_count": spec.get("restartCount", 0),
            "state": shaped, "last_state": {"reason": last.get("reason", ""), "exit_code": last.get("exitCode")}
            if last else {}}


def pod_shape(item: Mapping[str, Any]) -> dict:
    meta, status = item.get("metadata") or {}, item.get("status") or {}
    return {"name": meta.get("name"), "namespace": meta.get("namespace"), "phase": status.get("phase"),
            "node_name": (item.get("spec") or {}).get("nodeName", "unscheduled"), "start_time": status.get("startTime"),
            "deletion_timestamp": meta.get("deletionTimestamp"),
            "containers": [_container(c) for c in status.get("containerStatuses") or []],
            "conditions": _conditions(item)}


def event_shape(item: Mapping[str, Any]) -> dict:
    obj = item.get("involvedObject") or {}
    return {"namespace": (item.get("metadata") or {}).get("namespace"), "reason": item.get("reason"),
            "message": item.get("message", ""), "type": item.get("type"), "count": item.get("count", 1),
            "involved_object": f"{obj.get('kind')}/{obj.get('name')}",
            "first_time": item.get("firstTimestamp") or item.get("eventTime"), "last_time": item.get("lastTimestamp")}


def deployment_shape(item: Mapping[str, Any]) -> dict:
    meta, spec, status = item.get("metadata") or {}, item.get("spec") or {}, item.get("status") or {}
    return {"name": meta.get("name"), "namespace": meta.get("namespace"), "desired": spec.get("replicas", 1),
            "ready": status.get("readyReplicas", 0), "available": status.get("availableReplicas", 0),
            "unavailable": status.get("unavailableReplicas", 0)}


def node_shape(item: Mapping[str, Any]) -> dict:
    status = item.get("status") or {}
    cond = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    cap, alloc = status.get("capacity") or {}, status.get("allocatable") or {}
    return {"name": (item.get("metadata") or {}).get("name"), "ready": cond.get("Ready", "Unknown"),
            "memory_pressure": cond.get("MemoryPressure", "Unknown"), "disk_pressure": cond.get("DiskPressure", "Unknown"),
            "pid_pressure": cond.get("PIDPressure", "Unknown"), "capacity_cpu": cap.get("cpu"),
            "capacity_memory": cap.get("memory"), "allocatable_cpu": alloc.get("cpu"),
            "allocatable_memory": alloc.get("memory")}


class LiveSources:
    """Evidence read from live APIs; a source that is not configured is missing evidence, not an error."""

    def __init__(self, config: LiveConfig, *, client: httpx.AsyncClient | None = None):
        if not (config.kubernetes_url or config.prometheus_url or config.loki_url):
            raise ConfigurationError("a live backend needs at least one of kubernetes_url, prometheus_url, loki_url")
        self.config = config
        self.client = client or httpx.AsyncClient(timeout=10.0, verify=config.verify_tls)
        self._readers = {"pods": self._pods, "events": self._events, "deployments": self._deployments,
                         "node_health": self._nodes, "pod_logs": self._pod_logs, "monitors": self._monitors,
                         "metrics": self._metrics, "logs": self._logs}
        self._needs = {"pods": config.kubernetes_url, "events": config.kubernetes_url,
                       "deployments": config.kubernetes_url, "node_health": config.kubernetes_url,
                       "pod_logs": config.kubernetes_url, "monitors": config.prometheus_url,
                       "metrics": config.prometheus_url, "logs": config.loki_url}

    async def aclose(self) -> None:
        await self.client.aclose()

    def has(self, declaration: ToolDeclaration) -> bool:
        return declaration.reads is not None and bool(self._needs.get(declaration.reads))

    def kind_for(self, declaration: ToolDeclaration) -> str | None:
        return f"live_{declaration.reads}" if self.has(declaration) else None

    def unclaimed(self) -> list[str]:
        return []

    async def read(self, kind: str) -> Any:
        raise EvidenceMissing(f"the live backend has no evidence kind {kind!r}")

    async def source(self, declaration: ToolDeclaration, params: Mapping[str, Any]) -> Any:
        if not self.has(declaration):
            raise EvidenceMissing(f"no live source configured for {declaration.name}")
        try:
            return await self._readers[declaration.reads](params)  # type: ignore[index]
        except (httpx.HTTPError, ValueError) as exc:  # ValueError: a body that is not JSON
            raise SourceUnavailable(f"{declaration.name}: {type(exc).__name__}: {exc}") from exc

    async def _get(self, base: str, path: str, params: Mapping[str, Any] | None = None, *, auth: bool = False):
        headers = {"Authorization": f"Bearer {self.config.kubernetes_token}"} if auth and self.config.kubernetes_token \
            else {}
        response = await self.client.get(base.rstrip("/") + path, params=params, headers=headers)
        if response.status_code == 404:
            raise EvidenceMissing(f"{path}: not found (404)")
        response.raise_for_status()
        return response

    async def _k8s(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return (await self._get(self.config.kubernetes_url or "", path, params, auth=True)).json()

    def _ns_path(self, params: Mapping[str, Any], group: str, resource: str) -> str:
        ns = params.get("namespace") or self.config.namespace
        return f"{group}/namespaces/{ns}/{resource}" if ns else f"{group}/{resource}"

    async def _pods(self, params: Mapping[str, Any]) -> dict:
        body = await self._k8s(self._ns_path(params, "/api/v1", "pods"))
        return {"pods": [pod_shape(i) for i in body.get("items") or []]}

    async def _events(self, params: Mapping[str, Any]) -> dict:
        body = await self._k8s(self._ns_path(params, "/api/v1", "events"), {"fieldSelector": "type=Warning"})
        return {"warning_events": [event_shape(i) for i in body.get("items") or []]}

    async def _deployments(self, params: Mapping[str, Any]) -> dict:
        body = await self._k8s(self._ns_path(params, "/apis/apps/v1", "deployments"))
        return {"deployments": [deployment_shape(i) for i in body.get("items") or []]}

    async def _nodes(self, params: Mapping[str, Any]) -> dict:
        return {"nodes": [node_shape(i) for i in (await self._k8s("/api/v1/nodes")).get("items") or []]}

    async def _pod_logs(self, params: Mapping[str, Any]) -> dict:
        pod, ns = params.get("pod"), params.get("namespace") or self.config.namespace
        if not pod or not ns:
            raise EvidenceMissing("get_pod_logs needs pod= and a namespace on a live cluster")
        response = await self._get(self.config.kubernetes_url or "", f"/api/v1/namespaces/{ns}/pods/{pod}/log",
                                   {"tailLines": params.get("tail") or 200}, auth=True)
        return {"pod_name": pod, "namespace": ns, "logs": response.text}

    async def _monitors(self, params: Mapping[str, Any]) -> dict:
        body = (await self._get(self.config.prometheus_url or "", "/api/v1/alerts")).json()
        alerts = (body.get("data") or {}).get("alerts") or []
        return {"monitors": [{"name": (a.get("labels") or {}).get("alertname"),
                              "overall_state": "Alert" if a.get("state") == "firing" else "Warn",
                              "message": (a.get("annotations") or {}).get("summary", ""), "query": "",
                              "labels": a.get("labels") or {}} for a in alerts]}

    async def _metrics(self, params: Mapping[str, Any]) -> dict:
        query = params.get("query")
        if not query:
            raise EvidenceMissing("query_metrics needs query= (PromQL) on a live Prometheus")
        end = time.time()
        body = (await self._get(self.config.prometheus_url or "", "/api/v1/query_range", {
            "query": query, "start": end - self.config.window_s, "end": end, "step": self.config.step_s})).json()
        result = (body.get("data") or {}).get("result") or []
        return {"series": [{"name": (r.get("metric") or {}).get("__name__") or query, "labels": r.get("metric") or {},
                            "values": r.get("values") or []} for r in result]}

    async def _logs(self, params: Mapping[str, Any]) -> dict:
        service, text = params.get("service"), params.get("query")
        selector = f'{{service_name="{service}"}}' if service else self.config.loki_selector
        logql = selector + (f' |= "{text}"' if text else "")
        end = time.time()
        body = (await self._get(self.config.loki_url or "", "/loki/api/v1/query_range", {
            "query": logql, "start": int((end - self.config.window_s) * 1e9), "end": int(end * 1e9),
            "limit": 500, "direction": "backward"})).json()
        lines = []
        for stream in (body.get("data") or {}).get("result") or []:
            labels = stream.get("stream") or {}
            for ts, line in stream.get("values") or []:
                lines.append({"timestamp": ts, "message": line, "status": labels.get("level", labels.get(
                    "detected_level", "")), "service": labels.get("service_name", labels.get("app", ""))})
        return {"logs": sorted(lines, key=lambda entry: entry["timestamp"])}
