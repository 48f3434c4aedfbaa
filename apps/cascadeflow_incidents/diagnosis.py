"""The answer of an investigation (ROOT_CAUSE / CATEGORY / VALIDATED_CLAIMS / CAUSAL_CHAIN / REMEDIATION),
drafted from the analyzers' findings, parsed from a model's reply, and validated against the findings."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .analyzers import CATEGORIES, Evidence, Finding

_TUNE_ALERT = "no action needed; tune the alert that fired on a recovered or benign signal"
HEALTHY_ROOT_CAUSE = ("No failure is active now: the current state of pods, deployments and nodes is normal "
                      "and nothing the tools returned is failing.")


@dataclass(frozen=True, slots=True)
class Claim:
    text: str
    evidence: tuple[Evidence, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Diagnosis:
    root_cause: str
    category: str
    claims: tuple[Claim, ...] = ()
    causal_chain: tuple[str, ...] = ()
    remediation: tuple[str, ...] = ()
    runbooks: tuple[str, ...] = ()
    author: str = "analyzers"  # "analyzers" or the model that wrote the root cause

    def render(self) -> str:
        lines = [f"ROOT_CAUSE: {self.root_cause}", f"ROOT_CAUSE_CATEGORY: {self.category}", "", "VALIDATED_CLAIMS:"]
        for claim in self.claims:
            lines.append(f"- {claim.text} " + " ".join(f"[evidence: {e.kind}] \"{e.quote}\"" for e in claim.evidence))
        lines += ["", "CAUSAL_CHAIN:", *(f"- {step}" for step in self.causal_chain)]
        lines += ["", "REMEDIATION:", *(f"- {step}" for step in self.remediation)]
        if self.runbooks:
            lines += ["", "RUNBOOKS:", *(f"- {r}" for r in self.runbooks)]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"root_cause": self.root_cause, "category": self.category, "author": self.author,
                "claims": [{"text": c.text, "evidence": [{"kind": e.kind, "quote": e.quote} for e in c.evidence]}
                           for c in self.claims],
                "causal_chain": list(self.causal_chain), "remediation": list(self.remediation),
                "runbooks": list(self.runbooks)}


def category_of(findings: Sequence[Finding]) -> str:
    """The category of the strongest active finding that names one; healthy when nothing is active;
    unknown when only symptoms are active (something fails, no check names why)."""
    active = [f for f in findings if f.active]
    named = [f for f in active if f.category]
    if named:
        scores: dict[str, tuple[float, float]] = {}
        for f in named:
            top, total = scores.get(f.category, (0.0, 0.0))
            scores[f.category] = (max(top, f.weight), total + f.weight)
        return max(scores, key=lambda c: scores[c])
    return "unknown" if active else "healthy"


def _chain(primary: Finding, same: list[Finding], symptoms: list[Finding]) -> tuple[str, ...]:
    steps = [primary.statement] + [f.statement for f in same[:2]] + [f.statement for f in symptoms[:3]]
    return tuple(steps) + ("which is what the alert reports",)


def draft(findings: Sequence[Finding]) -> Diagnosis:
    """The analyzers' own answer: it cites only what the findings rest on."""
    category = category_of(findings)
    active = [f for f in findings if f.active]
    if category == "healthy":
        past = [f for f in findings if not f.active]
        notes = " ".join(f"{f.statement}." for f in past[:4])
        root = HEALTHY_ROOT_CAUSE + (f" Signals behind the alert are resolved or benign: {notes}" if notes else "")
        claims = tuple(Claim(f.statement, f.evidence[:3]) for f in past[:6])
        chain = (*(f.statement for f in past[:3]), "no current failure follows from them")
        return Diagnosis(root_cause=root, category="healthy", claims=claims, causal_chain=chain,
                         remediation=(_TUNE_ALERT,))
    if category == "unknown":
        claims = tuple(Claim(f.statement, f.evidence[:2]) for f in active[:6])
        return Diagnosis(root_cause="Something is failing but no check names its cause: "
                                    + "; ".join(f.statement for f in active[:3]),
                         category="unknown", claims=claims,
                         causal_chain=tuple(f.statement for f in active[:3]),
                         remediation=("gather more evidence (logs, metrics of the dependencies); escalate to a person",))
    causes = [f for f in active if f.category == category]
    primary, same = causes[0], causes[1:]
    symptoms = [f for f in active if f.category is None]
    root = primary.statement + "".join(f"; {f.statement}" for f in same[:2])
    claims = tuple(Claim(f.statement, f.evidence[:3]) for f in [*causes, *symptoms][:8])
    remedies = tuple(dict.fromkeys(f.remediation for f in causes if f.remediation)) or (
        "follow the runbook for this alert",)
    return Diagnosis(root_cause=root, category=category, claims=claims,
                     causal_chain=_chain(primary, same, symptoms), remediation=remedies)


_SECTION = re.compile(r"^\s*(ROOT_CAUSE_CATEGORY|ROOT_CAUSE|CATEGORY)\s*:\s*(.+)$", re.MULTILINE | re.IGNORECASE)


def parse_reply(text: str) -> tuple[str | None, str | None]:
    """(root cause, category) from a model's reply in the answer format; None where missing."""
    root = category = None
    for m in _SECTION.finditer(text or ""):
        key, value = m.group(1).upper(), m.group(2).strip()
        if key == "ROOT_CAUSE" and root is None:
            root = value
        elif key in ("ROOT_CAUSE_CATEGORY", "CATEGORY") and category is None:
            category = value.strip().strip("`*.").lower().replace(" ", "_")
    return root, category


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    problems: tuple[str, ...] = field(default_factory=tuple)


def validate(root: str | None, category: str | None, findings: Sequence[Finding]) -> Verdict:
    """Does the answer cite evidence, and is its category consistent with the active findings?"""
    problems = []
    if not root or len(root.split()) < 4:
        problems.append("no root cause stated")
    if category not in CATEGORIES:
        problems.append(f"category {category!r} is not one of {', '.join(CATEGORIES)}")
    expected = category_of(findings)
    active_categories = {f.category for f in findings if f.active and f.category}
    if category == "healthy" and active_categories:
        problems.append(f"says healthy while findings are active ({', '.join(sorted(active_categories))})")
    elif category in CATEGORIES and category != "healthy" and expected == "healthy":
        problems.append("names a failure while no finding is active")
    elif active_categories and category not in active_categories:
        problems.append(f"category {category!r} matches no active finding (expected {expected})")
    names = {f.subject.partition("/")[2] or f.subject for f in findings}
    if root and findings and not any(n and n.lower() in root.lower() for n in names) and expected != "healthy":
        problems.append("cites none of the objects the evidence is about")
    return Verdict(not problems, tuple(problems))


def adopt(diagnosis: Diagnosis, root: str, category: str, author: str) -> Diagnosis:
    """A validated model answer replaces the analyzers' root cause; the claims stay evidence-backed."""
    return replace(diagnosis, root_cause=root, category=category, author=author)
