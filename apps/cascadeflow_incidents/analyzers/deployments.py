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
            found.append(Finding(check="replicas_unavailable", subject=f"Deployment/{d.get('name')}",
                                 statement=f"deployment {d.get('name')} has "
                                           f"{d.get('ready')}/{d.get('desired')} replicas ready",
                                 category=None, weight=0.3, active=True, evidence=(quote,)))
        else:
            found.append(Finding(check="deployment_complete", subject=f"Deployment/{d.get('name')}",
                                 statement=f"deployment {d.get('name')} has all "
                                           f"{d.get('desired')} replicas ready and available",
                                 category=None, weight=0.1, active=False, evidence=(quote,)))
    return found
