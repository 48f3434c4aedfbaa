"""Alerts from the outside world (Alertmanager and Grafana webhooks, the scenario `alert.json`) as one
normalised `Alert`: severity on one scale, labels as plain strings, a fingerprint for grouping."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cascadeflow import InvalidRequestError

# One scale for every source. Alertmanager rules, Grafana and paging tools spell severities many ways;
# each spelling maps to P0 (page now) .. P3 (ticket) or INFO (no action).
SEVERITIES = ("P0", "P1", "P2", "P3", "INFO")
_SEVERITY_SPELLINGS = {
    "p0": "P0", "sev0": "P0", "sev1": "P0", "critical": "P0", "page": "P0", "disaster": "P0", "emergency": "P0",
    "p1": "P1", "sev2": "P1", "high": "P1", "error": "P1", "major": "P1",
    "p2": "P2", "sev3": "P2", "warning": "P2", "warn": "P2", "medium": "P2", "average": "P2",
    "p3": "P3", "sev4": "P3", "low": "P3", "minor": "P3", "ticket": "P3",
    "info": "INFO", "informational": "INFO", "none": "INFO", "ok": "INFO", "debug": "INFO",
}
# Labels that say which thing an alert is about, in the order they are trusted.
_SERVICE_LABELS = ("service", "service_name", "app", "app_kubernetes_io_name", "job", "workload_name",
                   "kube_deployment", "deployment", "container")
# `cluster`: the same rule firing in two clusters (Alertmanager's usual external label) is two incidents.
_IDENTITY_LABELS = ("alertname", "cluster", "namespace", "service", "pod", "kube_pod", "node", "kube_node",
                    "instance")


def normalise_severity(raw: Any) -> str:
    """'critical' -> 'P0', 'warning' -> 'P2', 'P1' -> 'P1'; unknown spellings become 'P2' (triage)."""
    key = str(raw or "").strip().lower()
    return _SEVERITY_SPELLINGS.get(key, "P2" if key else "P3")


@dataclass(frozen=True, slots=True)
class Alert:
    """One firing (or resolved) alert, normalised from any source."""

    name: str
    severity: str
    status: str  # "firing" | "resolved"
    source: str  # "alertmanager" | "grafana" | "scenario"
    title: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    starts_at: str | None = None

    @property
    def service(self) -> str:
        return next((self.labels[k] for k in _SERVICE_LABELS if self.labels.get(k)), "unknown")

    @property
    def namespace(self) -> str | None:
        return self.labels.get("namespace") or self.annotations.get("kube_namespace") or None

    @property
    def fingerprint(self) -> str:
        """Stable identity of what is alerting: the same alert re-sent by a webhook groups with itself."""
        parts = [f"{k}={self.labels[k]}" for k in _IDENTITY_LABELS if self.labels.get(k)] or [self.name, self.title]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]

    def text(self) -> str:
        """Everything a person or a model reads about the alert, one line per part."""
        lines = [f"[{self.severity}] {self.name}: {self.title}"]
        lines += [f"{k}: {v}" for k, v in self.annotations.items() if v]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "severity": self.severity, "status": self.status, "source": self.source,
                "title": self.title, "labels": dict(self.labels), "annotations": dict(self.annotations),
                "starts_at": self.starts_at, "fingerprint": self.fingerprint, "service": self.service}


def _strings(raw: Any, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidRequestError(f"{where} must be an object of strings, got {type(raw).__name__}")
    return {str(k): "" if v is None else str(v) for k, v in raw.items()}


def _one(labels: dict[str, str], annotations: dict[str, str], *, status: str, source: str,
         starts_at: str | None = None, title: str | None = None, severity: Any = None) -> Alert:
    name = labels.get("alertname") or title or "unnamed-alert"
    heading = title or annotations.get("summary") or annotations.get("description") or name
    return Alert(name=name, severity=normalise_severity(severity or labels.get("severity")),
                 status="resolved" if status.lower() in ("resolved", "ok", "normal") else "firing",
                 source=source, title=heading, labels=labels, annotations=annotations, starts_at=starts_at)


def parse_alertmanager(payload: Mapping[str, Any]) -> list[Alert]:
    """An Alertmanager webhook (version 4): one Alert per entry of `alerts`, group labels merged in."""
    entries = payload.get("alerts")
    if not isinstance(entries, list) or not entries:
        raise InvalidRequestError("an Alertmanager payload needs a non-empty 'alerts' list")
    common = _strings(payload.get("commonLabels"), "commonLabels")
    common_notes = _strings(payload.get("commonAnnotations"), "commonAnnotations")
    alerts = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise InvalidRequestError(f"alerts[{i}] must be an object, got {type(entry).__name__}")
        labels = {**common, **_strings(entry.get("labels"), f"alerts[{i}].labels")}
        notes = {**common_notes, **_strings(entry.get("annotations"), f"alerts[{i}].annotations")}
        alerts.append(_one(labels, notes, status=str(entry.get("status") or payload.get("status") or "firing"),
                           source="alertmanager", starts_at=entry.get("startsAt")))
    return alerts


def parse_grafana(payload: Mapping[str, Any]) -> list[Alert]:
    """A Grafana unified-alerting webhook: Alertmanager-shaped alerts plus `title`/`state`; a legacy
    Grafana payload (`ruleName`, `state`, `evalMatches`) becomes one Alert."""
    if isinstance(payload.get("alerts"), list) and payload["alerts"]:
        return [Alert(name=a.name, severity=a.severity, status=a.status, source="grafana", title=a.title,
                      labels=a.labels, annotations=a.annotations, starts_at=a.starts_at)
                for a in parse_alertmanager(payload)]
    rule = payload.get("ruleName") or payload.get("title")
    if not rule:
        raise InvalidRequestError("a Grafana payload needs 'alerts' (unified alerting) or 'ruleName' (legacy)")
    labels = {"alertname": str(rule), **_strings(payload.get("tags"), "tags")}
    notes = {"message": str(payload.get("message") or "")}
    return [_one(labels, notes, status=str(payload.get("state") or "alerting"), source="grafana",
                 title=str(payload.get("title") or rule))]


def parse_scenario_alert(payload: Mapping[str, Any]) -> Alert:
    """The scenario format's `alert.json`: a title, a state and Alertmanager-style common labels."""
    labels = _strings(payload.get("commonLabels"), "commonLabels")
    notes = _strings(payload.get("commonAnnotations"), "commonAnnotations")
    if not labels and not payload.get("title"):
        raise InvalidRequestError("a scenario alert needs 'title' or 'commonLabels'")
    return _one(labels, notes, status=str(payload.get("state") or "alerting"), source="scenario",
                title=str(payload.get("title") or ""))


def parse_payload(payload: Any) -> list[Alert]:
    """Any supported payload, recognised by its shape; a clear error names the shapes accepted."""
    if not isinstance(payload, Mapping):
        raise InvalidRequestError(f"an alert payload must be a JSON object, got {type(payload).__name__}")
    if "alerts" in payload:
        looks_grafana = "orgId" in payload or "title" in payload and "receiver" in payload and "state" in payload
        return parse_grafana(payload) if looks_grafana else parse_alertmanager(payload)
    if "ruleName" in payload:
        return parse_grafana(payload)
    if "commonLabels" in payload or "title" in payload:
        return [parse_scenario_alert(payload)]
    raise InvalidRequestError("unrecognised alert payload: expected an Alertmanager webhook ('alerts'), a "
                              "Grafana webhook ('alerts' with 'orgId', or 'ruleName') or a scenario alert "
                              "('title' and 'commonLabels')")


@dataclass(frozen=True, slots=True)
class Incident:
    """An incident as a person opens one by hand (the write-up's `Incident(id=, title=, severity=)`)."""

    id: str
    title: str
    severity: str = "P2"
    service: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", normalise_severity(self.severity))

    def alert(self) -> Alert:
        """The incident as an Alert the investigation loop takes."""
        labels = {"alertname": self.id, **({"service": self.service} if self.service else {})}
        return Alert(name=self.id, severity=self.severity, status="firing", source="manual", title=self.title,
                     labels=labels)
