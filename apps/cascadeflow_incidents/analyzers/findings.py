"""What an analyzer states: a `Finding` (check, subject, statement, category, weight, whether it is active
now) and the `Evidence` quotes it rests on; `Observations` is the evidence gathered so far, by source."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..tools.shaping import items_of
from .generic import extract

# The categories an answer may give (the scenario format's vocabulary).
CATEGORIES = ("resource_exhaustion", "configuration_error", "infrastructure", "dependency_failure",
              "code_defect", "data_quality", "healthy", "unknown")


@dataclass(frozen=True, slots=True)
class Evidence:
    kind: str  # the evidence kind it came from, e.g. eks_events
    quote: str  # the exact text (shortened) it rests on

    def cite(self) -> str:
        return f"[evidence: {self.kind}] {self.quote}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One deterministic statement. `category` None marks a symptom that supports others but names no
    cause; `active` False marks a signal that has since recovered or is benign (it explains an alert
    without being a failure now). `weight` (0..1) ranks how specific the signal is to its cause."""

    check: str
    subject: str
    statement: str
    category: str | None
    weight: float
    active: bool
    evidence: tuple[Evidence, ...]
    remediation: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "subject": self.subject, "statement": self.statement,
                "category": self.category, "weight": self.weight, "active": self.active,
                "evidence": [{"kind": e.kind, "quote": e.quote} for e in self.evidence],
                "remediation": self.remediation}


def short(text: Any, limit: int = 240) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(slots=True)
class Observations:
    """Evidence by source as the tools returned it; `kinds` remembers each source's evidence kind."""

    pods: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    deployments: list[dict] = field(default_factory=list)
    nodes: list[dict] = field(default_factory=list)
    pod_logs: list[dict] = field(default_factory=list)
    logs: list[dict] = field(default_factory=list)
    monitors: list[dict] = field(default_factory=list)
    metrics: list[dict] = field(default_factory=list)
    other: dict[str, Any] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)

    def kind(self, source: str) -> str:
        return self.kinds.get(source, source)

    def pod(self, name: str) -> dict | None:
        return next((p for p in self.pods if p.get("name") == name), None)

    def log_lines(self) -> list[tuple[str, str, str, str | None]]:
        """(evidence kind, level, message, pod name for pod logs) of every log line."""
        lines = [(entry.get("evidence_kind") or self.kind("logs"), str(entry.get("status", entry.get("level", "")))
                  .lower(), str(entry.get("message", entry)), None) for entry in self.logs if isinstance(entry, dict)]
        for blob in self.pod_logs:
            for line in str(blob.get("logs", "")).splitlines():
                lines.append((self.kind("pod_logs"), _level_of(line), line, blob.get("pod_name")))
        return lines


def _level_of(line: str) -> str:
    upper = line.upper()
    for level in ("FATAL", "ERROR", "WARN", "INFO", "DEBUG"):
        if f" {level} " in f" {upper} " or upper.startswith(level):
            return "error" if level == "FATAL" else level.lower()
    return ""


_FIELDS = {"pods": "pods", "events": "events", "deployments": "deployments", "node_health": "nodes",
           "nodes": "nodes", "pod_logs": "pod_logs", "logs": "logs", "monitors": "monitors", "metrics": "metrics"}


def observe(obs: Observations, source: str | None, kind: str, data: Any) -> None:
    """Add one tool result: `source` is the tool's `reads` suffix (None for the generic tool)."""
    obs.seen.add(kind)
    name = _FIELDS.get(source or "")
    if name is None or name == "metrics":  # any shape: text entries become log lines, number runs series
        if name is None:
            obs.other[kind] = data
        logs, series = extract(kind, data)
        obs.logs.extend(logs)
        obs.metrics.extend(series)
        return
    obs.kinds[source] = kind
    items = [data] if name == "pod_logs" and isinstance(data, dict) and "logs" in data else items_of(data)
    if name == "events":  # events that are not Kubernetes events (a database's, a cloud's) read as log lines
        foreign = [i for i in items if isinstance(i, dict) and not ({"reason", "involved_object"} & set(i))]
        obs.logs.extend(extract(kind, foreign)[0])
        items = [i for i in items if i not in foreign]
    bucket = getattr(obs, name)
    bucket.extend(item for item in items if isinstance(item, dict) and item not in bucket)
