"""Deployment checks: fewer ready replicas than desired (a symptom whose cause other checks name)."""

from __future__ import annotations

from .findings import Evidence, Finding, Observations, short
from .state import deployment_complete


def analyze_deployments(obs: Observations) -> list[Finding]:
    kind = obs.kind("deployments")
    found = []
    for d in obs.deployments:
        quote = Evidence(kind, short(f"deployment {d.get('name')}: desired={d.get('desired')} ready={d.get('ready')} "
                                     f"available={d.get('available')} unavailable={d.get('unavailable')}"))
        if not deployment_complete(d):
            found.append(Finding("replicas_unavailable", f"Deployment/{d.get('name')}", f"deployment "
                                 f"{d.get('name')} has {d.get('ready')}/{d.get('desired')} replicas ready", None,
                                 0.3, True, (quote,)))
        else:
            found.append(Finding("deployment_complete", f"Deployment/{d.get('name')}", f"deployment {d.get('name')} "
                                 f"has all {d.get('desired')} replicas ready and available", None, 0.1, False,
                                 (quote,)))
    return found
