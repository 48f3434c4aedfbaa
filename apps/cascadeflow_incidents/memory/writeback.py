"""Write-back after resolution: a person confirms how an investigated incident ended (did the fix work,
how long it took) and the incident joins the memory with what the investigation found."""

from __future__ import annotations

from typing import Any

from .store import IncidentRecord, MemoryStore

_VERSION_LABELS = ("version", "app_kubernetes_io_version", "release", "image_tag", "deploy_version")


def record_from(report: Any, *, fix_worked: bool | None, minutes_to_resolve: float | None = None,
                remediation: str | None = None) -> IncidentRecord:
    """An IncidentRecord from an InvestigationReport; `remediation` is what was actually done, when it
    differs from what the investigation proposed."""
    alert, diagnosis = report.alert, report.diagnosis
    symptoms = "; ".join([alert.annotations.get("summary") or alert.title,
                          *(f.statement for f in report.findings if f.active)][:5])
    version = next((alert.labels[k] for k in _VERSION_LABELS if alert.labels.get(k)), None)
    return IncidentRecord(title=alert.title or alert.name, symptoms=symptoms, root_cause=diagnosis.root_cause,
                          category=diagnosis.category, remediation=remediation or "; ".join(diagnosis.remediation),
                          services=(alert.service,), deploy_version=version, fix_worked=fix_worked,
                          minutes_to_resolve=minutes_to_resolve, source=f"investigation {report.investigation_id}")


def remember(report: Any, store: MemoryStore, *, fix_worked: bool | None, minutes_to_resolve: float | None = None,
             remediation: str | None = None) -> IncidentRecord:
    """Store the resolved incident (a read-only store refuses: evaluation runs never write)."""
    return store.add(record_from(report, fix_worked=fix_worked, minutes_to_resolve=minutes_to_resolve,
                                 remediation=remediation))
