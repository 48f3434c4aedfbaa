"""Evidence of a kind no dedicated tool reads (a database's metrics, a cloud provider's events, ...) is
still analysed: its text entries are read as log lines and its numeric series as metric series, each
remembering the evidence kind it came from."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

_TEXT_KEYS = ("message", "msg", "log", "event", "description", "detail", "error")
_LEVEL_KEYS = ("status", "level", "severity", "type")
_SERIES_KEYS = ("values", "datapoints", "samples", "points")
MIN_SERIES = 9  # enough samples for a baseline and a recent window
MAX_DEPTH = 6


def _is_series(value: Any) -> bool:
    if not isinstance(value, list) or len(value) < MIN_SERIES:
        return False
    return all(isinstance(v, (int, float)) and not isinstance(v, bool)
               or isinstance(v, (list, tuple)) and len(v) >= 2 for v in value)


def _walk(node: Any, path: str, depth: int) -> Iterator[tuple[str, dict | list]]:
    if depth > MAX_DEPTH:
        return
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}" if path else str(key), depth + 1)
    elif isinstance(node, list):
        if _is_series(node):
            yield path, node
            return
        for item in node:
            yield from _walk(item, path, depth + 1)


def extract(kind: str, data: Any) -> tuple[list[dict], list[dict]]:
    """(log entries, metric series) found anywhere in a payload, tagged with its evidence kind. A text entry
    without a level gets the level 'event' (it is read like a warning)."""
    logs, series = [], []
    for path, node in _walk(data, "", 0):
        if isinstance(node, list):
            series.append({"name": f"{kind}.{path}" if path else kind, "values": node, "evidence_kind": kind})
            continue
        text = next((node[k] for k in _TEXT_KEYS if isinstance(node.get(k), str) and node.get(k)), None)
        if text:
            level = next((str(node[k]) for k in _LEVEL_KEYS if isinstance(node.get(k), str)), "event")
            logs.append({"message": text, "status": level.lower(), "evidence_kind": kind})
        values = next((node[k] for k in _SERIES_KEYS if _is_series(node.get(k))), None)
        if values is not None:
            named = node.get("name") or node.get("metric") or node.get("label")
            series.append({"name": str(named) if named else f"{kind}.{path}", "values": values,
                           "evidence_kind": kind})
    return logs, _unique(series)


def _unique(series: list[dict]) -> list[dict]:
    seen: set[int] = set()
    out = []
    for s in series:
        if id(s["values"]) not in seen:
            seen.add(id(s["values"]))
            out.append(s)
    return out
