"""Deterministic analyzers: every check states a Finding with the evidence it rests on."""

from __future__ import annotations

from dataclasses import replace

from .deployments import analyze_deployments
from .events import analyze_events
from .findings import CATEGORIES, Evidence, Finding, Observations, observe, short
from .logs import analyze_logs
from .metrics import analyze_metrics
from .nodes import analyze_nodes
from .pods import analyze_pods

ANALYZERS = (analyze_pods, analyze_events, analyze_nodes, analyze_deployments, analyze_logs, analyze_metrics)


def _merge(findings: list[Finding]) -> list[Finding]:
    """One finding per (check, subject): evidence pooled, the strongest weight, active if any copy is."""
    merged: dict[tuple[str, str], Finding] = {}
    for f in findings:
        key = (f.check, f.subject)
        old = merged.get(key)
        if old is None:
            merged[key] = f
            continue
        quotes = old.evidence + tuple(e for e in f.evidence if e not in old.evidence)
        best = f if f.weight > old.weight else old
        merged[key] = replace(best, evidence=quotes, active=old.active or f.active)
    return list(merged.values())


def _with_context(f: Finding, obs: Observations) -> Finding:
    """A recovered signal cites the log lines about the same object (what resolved it)."""
    name = f.subject.partition("/")[2] or f.subject
    if f.active or f.weight < 0.15 or len(name) < 4:  # status lines (all ready, all OK) need no context
        return f
    lines = [Evidence(kind, short(msg)) for kind, _, msg, _ in obs.log_lines() if name in msg]
    if not lines:
        return f
    return replace(f, evidence=f.evidence + tuple(lines[:2]),
                   statement=f"{f.statement}; logs: {short(lines[0].quote, 200)}")


def analyze(obs: Observations) -> list[Finding]:
    """All findings, strongest first (active before recovered)."""
    found = _merge([f for analyzer in ANALYZERS for f in analyzer(obs)])
    found = [_with_context(f, obs) for f in found]
    return sorted(found, key=lambda f: (not f.active, -f.weight, f.check, f.subject))


__all__ = ["ANALYZERS", "CATEGORIES", "Evidence", "Finding", "Observations", "analyze", "observe"]
