"""What the write endpoints do, apart from HTTP: take in an alert, start an investigation of a scenario or
of a received incident, drain the deferred queue, and write an incident into the memory."""

from __future__ import annotations

from typing import Any

from ..intake import Alert
from ..memory import IncidentRecord
from .runner import Started, alert_from_dict
from .services import WebServices

NO_SOURCE = ("no evidence source for this alert: no recorded scenario has its fingerprint and neither "
             "evidence_dir nor live sources (kubernetes_url, prometheus_url, loki_url) are configured")


def receive_alert(svc: WebServices, alert: Alert) -> Started:
    """A webhook alert: joins an investigation of the same alert still running; a firing one with an evidence
    source is investigated at once (when `auto_investigate`); anything else is recorded as received."""
    running = svc.runner.active_fingerprints().get(alert.fingerprint)
    if running is not None:
        return Started(incident_id=running, investigation_id=None, status="investigating",
                       reason="duplicate of an alert under investigation")
    toolbox = svc.toolbox_for(alert)
    if alert.status == "firing" and svc.settings.auto_investigate and toolbox is not None:
        return svc.runner.start(alert, toolbox)
    incident = svc.data.append_incident(_new_id(), "received", alert.to_dict(),
                                        reason="" if toolbox is not None else NO_SOURCE)
    return Started(incident_id=incident["incident_id"], investigation_id=None, status="received",
                   reason=incident["reason"])


def start_scenario(svc: WebServices, scenario_id: str) -> Started | None:
    scenario = svc.scenario(scenario_id)
    if scenario is None:
        return None
    from ..tools import recorded_toolbox

    toolbox = recorded_toolbox(scenario.evidence, memory=svc.memory, runbooks=svc.runbooks)
    return svc.runner.start(scenario.alert, toolbox, scenario=scenario.scenario_id)


def start_incident(svc: WebServices, incident_id: str) -> Started | None:
    """Investigate an incident the app already holds (received without an investigation, or finished)."""
    line = svc.data.read_incidents().get(incident_id)
    if line is None:
        return None
    alert = alert_from_dict(line.get("alert") or {})
    toolbox = svc.toolbox_for(alert)
    if toolbox is None:
        return Started(incident_id=incident_id, investigation_id=None, status=str(line.get("status")),
                       reason=NO_SOURCE)
    return svc.runner.start(alert, toolbox, incident_id=incident_id, scenario=line.get("scenario"))


def drain_queue(svc: WebServices) -> dict[str, Any]:
    """Start the queued alerts the day's budget can now fit, oldest first; the rest stay queued."""
    started: list[str] = []

    def handle(item: Any) -> None:
        alert = alert_from_dict(item.payload.get("alert") or {})
        toolbox = svc.toolbox_for(alert)
        if toolbox is None:
            raise LookupError(NO_SOURCE)
        remaining = svc.runner.day_remaining()
        if remaining is not None and remaining < svc.runner.investigator.config.budget_usd:
            raise RuntimeError("the day's budget still cannot fit an investigation")
        result = svc.runner.start(alert, toolbox, incident_id=str(item.payload.get("incident_id") or "") or None,
                                  scenario=item.payload.get("scenario"))
        started.append(result.incident_id)

    report = svc.queue.drain(handle)
    return {"started": started, "kept": dict(report.failed), "queued": len(svc.queue)}


def remember(svc: WebServices, body: dict[str, Any]) -> IncidentRecord:
    """Write a resolved incident into the memory (what recall and the reflection insights read)."""
    if svc.memory is None or getattr(svc.memory, "read_only", False):
        raise PermissionError("the incident memory is read-only in this app")
    record = IncidentRecord(**{k: v for k, v in body.items() if v is not None})
    return svc.memory.add(record)


def _new_id() -> str:
    import uuid

    return "INC-" + uuid.uuid4().hex[:8]
