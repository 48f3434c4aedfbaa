"""Log search, monitors and metrics: the observability backends' view of an incident (read-only)."""

from __future__ import annotations

from typing import Any

from .base import Param, Tool, ToolDeclaration
from .shaping import keep, mentions

SEARCH_LOGS = ToolDeclaration(
    "search_logs", "Search application and platform logs (timestamp, level, service, message).",
    (Param("query", str, "only lines containing this text"), Param("service", str, "only this service"),
     Param("level", str, "only this level, e.g. error")), reads="logs")
QUERY_MONITORS = ToolDeclaration(
    "query_monitors", "Alerting monitors with their query and current state (OK, Alert, Warn, No Data).",
    (Param("state", str, "only monitors in this state"),), reads="monitors")
QUERY_METRICS = ToolDeclaration(
    "query_metrics", "Metric series (name, labels, [timestamp, value] samples) for baseline comparison.",
    (Param("query", str, "metric name or PromQL expression"),), reads="metrics")


async def search_logs(backend: Any, query: str | None = None, service: str | None = None,
                      level: str | None = None) -> Any:
    data = await backend.source(SEARCH_LOGS, {"query": query, "service": service, "level": level})
    if query:
        data = keep(data, lambda line: mentions(line.get("message", line), query))
    if service:
        data = keep(data, lambda line: mentions(line.get("service", ""), service))
    if level:
        data = keep(data, lambda line: str(line.get("status", line.get("level", ""))).lower() == level.lower())
    return data


async def query_monitors(backend: Any, state: str | None = None) -> Any:
    data = await backend.source(QUERY_MONITORS, {"state": state})
    return keep(data, lambda m: state is None or str(m.get("overall_state", "")).lower() == state.lower())


async def query_metrics(backend: Any, query: str | None = None) -> Any:
    data = await backend.source(QUERY_METRICS, {"query": query})
    return keep(data, lambda s: query is None or mentions(s.get("name", s.get("metric", s)), query))


TOOLS = (Tool(SEARCH_LOGS, search_logs), Tool(QUERY_MONITORS, query_monitors), Tool(QUERY_METRICS, query_metrics))
