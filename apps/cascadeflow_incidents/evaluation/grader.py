"""Deterministic grading of one investigation against a scenario's `answer.yml`: the category, every
required keyword, no forbidden category, the required queries made, the optimal trajectory covered, the
loop limit kept. No model judges anything here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


def step_kind(step: str) -> str:
    """A trajectory step names a tool as <verb>_<evidence kind> ('list_eks_pods' reads 'eks_pods')."""
    _verb, sep, rest = step.partition("_")
    return rest if sep and rest else step


@dataclass(frozen=True, slots=True)
class Graded:
    """What the grader needs from an investigation."""

    category: str
    answer: str
    tools_called: Sequence[str]
    evidence_kinds_read: Sequence[str]
    loops: int


@dataclass(frozen=True, slots=True)
class Grade:
    passed: bool
    expected_category: str | None
    category: str
    category_ok: bool
    missing_keywords: tuple[str, ...]
    keyword_coverage: float
    forbidden_hit: bool
    missing_queries: tuple[str, ...]
    trajectory_coverage: float
    extra_calls: int
    loops: int
    loops_ok: bool
    reasons: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _satisfied(step: str, graded: Graded) -> bool:
    return step in graded.tools_called or step_kind(step) in graded.evidence_kinds_read


def grade(spec: Mapping[str, Any], graded: Graded) -> Grade:
    expected = spec.get("root_cause_category")
    text = graded.answer.lower()
    keywords = [str(k) for k in spec.get("required_keywords") or []]
    missing = tuple(k for k in keywords if k.lower() not in text)
    forbidden = graded.category in {str(c) for c in spec.get("forbidden_categories") or []}
    queries = [str(q) for q in spec.get("required_queries") or []]
    missing_queries = tuple(q for q in queries if not _satisfied(q, graded))
    trajectory = [str(s) for s in spec.get("optimal_trajectory") or []]
    covered = sum(_satisfied(s, graded) for s in trajectory)
    evidence_calls = len(graded.evidence_kinds_read)
    max_loops = spec.get("max_investigation_loops")
    loops_ok = max_loops is None or graded.loops <= int(max_loops)
    category_ok = expected is None or graded.category == expected
    reasons = []
    if not category_ok:
        reasons.append(f"category {graded.category} (expected {expected})")
    if missing:
        reasons.append(f"missing keywords: {', '.join(missing)}")
    if forbidden:
        reasons.append(f"forbidden category {graded.category}")
    if missing_queries:
        reasons.append(f"required queries not made: {', '.join(missing_queries)}")
    if not loops_ok:
        reasons.append(f"{graded.loops} loops > {max_loops}")
    return Grade(
        passed=not reasons, expected_category=expected, category=graded.category, category_ok=category_ok,
        missing_keywords=missing, keyword_coverage=(1 - len(missing) / len(keywords)) if keywords else 1.0,
        forbidden_hit=forbidden, missing_queries=missing_queries,
        trajectory_coverage=covered / len(trajectory) if trajectory else 1.0,
        extra_calls=max(0, evidence_calls - covered), loops=graded.loops, loops_ok=loops_ok,
        reasons=tuple(reasons))
