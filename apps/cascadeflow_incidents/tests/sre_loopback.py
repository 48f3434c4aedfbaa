"""A loopback server speaking the Kubernetes API, the Prometheus HTTP API and Loki's query API (the
parts the live tools read), on 127.0.0.1 with an ephemeral port, in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from typing import Self

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

NS = "shop"
POD = {"metadata": {"name": "web-7c-x", "namespace": NS}, "spec": {"nodeName": "worker-a"},
       "status": {"phase": "Running", "startTime": "2026-03-02T10:00:00Z",
                  "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
                  "containerStatuses": [{"name": "web", "ready": False, "restartCount": 6,
                                         "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
                                         "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}]}}
EVENT = {"metadata": {"namespace": NS}, "reason": "BackOff", "type": "Warning", "count": 6,
         "message": "Back-off restarting failed container web (reason: OOMKilled, exit code: 137)",
         "involvedObject": {"kind": "Pod", "name": "web-7c-x"}, "firstTimestamp": "2026-03-02T10:01:00Z",
         "lastTimestamp": "2026-03-02T10:20:00Z"}
DEPLOYMENT = {"metadata": {"name": "web", "namespace": NS}, "spec": {"replicas": 2},
              "status": {"readyReplicas": 1, "availableReplicas": 1, "unavailableReplicas": 1}}
NODE = {"metadata": {"name": "worker-a"}, "status": {"conditions": [{"type": "Ready", "status": "True"},
                                                                   {"type": "MemoryPressure", "status": "False"}],
                                                    "capacity": {"cpu": "4", "memory": "16Gi"},
                                                    "allocatable": {"cpu": "3800m", "memory": "15Gi"}}}


class SreLoopback:
    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], dict[str, str]]] = []  # (path, query, headers)
        routes = [
            Route(f"/api/v1/namespaces/{NS}/pods", self._list([POD])),
            Route(f"/api/v1/namespaces/{NS}/events", self._list([EVENT])),
            Route(f"/apis/apps/v1/namespaces/{NS}/deployments", self._list([DEPLOYMENT])),
            Route("/api/v1/nodes", self._list([NODE])),
            Route(f"/api/v1/namespaces/{NS}/pods/{{pod}}/log", self._log),
            Route("/api/v1/alerts", self._alerts),
            Route("/api/v1/query_range", self._range),
            Route("/loki/api/v1/query_range", self._loki),
            Route("/broken/api/v1/alerts", self._broken),
        ]
        self.app = Starlette(routes=routes)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)

    def _seen(self, request: Request) -> None:
        self.requests.append((request.url.path, dict(request.query_params), dict(request.headers)))

    def _list(self, items: list[dict]):
        async def handle(request: Request) -> JSONResponse:
            self._seen(request)
            return JSONResponse({"kind": "List", "apiVersion": "v1", "items": items})
        return handle

    async def _log(self, request: Request) -> PlainTextResponse:
        self._seen(request)
        return PlainTextResponse("INFO start\nWARN heap 500Mi / 512Mi\n[kernel] Memory cgroup out of memory: "
                                 "Killed process 1\n")

    async def _alerts(self, request: Request) -> JSONResponse:
        self._seen(request)
        return JSONResponse({"status": "success", "data": {"alerts": [
            {"labels": {"alertname": "KubePodCrashLooping", "namespace": NS}, "state": "firing",
             "annotations": {"summary": "web crash looping"}}]}})

    async def _range(self, request: Request) -> JSONResponse:
        self._seen(request)
        values = [[1700000000 + 60 * i, str(100 + (i % 3))] for i in range(20)] + [[1700001200, "400"]] * 3
        return JSONResponse({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"__name__": "container_memory_working_set_bytes", "pod": "web-7c-x"}, "values": values}]}})

    async def _loki(self, request: Request) -> JSONResponse:
        self._seen(request)
        return JSONResponse({"status": "success", "data": {"resultType": "streams", "result": [
            {"stream": {"service_name": "web", "level": "error"},
             "values": [["1700000000000000000", "redis: connect: connection refused"]]}]}})

    async def _broken(self, request: Request) -> JSONResponse:
        return JSONResponse({"error": "boom"}, status_code=503)
