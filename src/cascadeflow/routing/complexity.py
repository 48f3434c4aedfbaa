"""Optional complexity pre-router: cascade as usual, or send a request straight to the strongest tier.

Why not a keyword list: words such as "list", "create" or "analyze" say little about difficulty on their
own ("Create a short list of five common fruits for kids" is trivial). The estimate combines structural
evidence instead — prompt length, how many separate asks and constraints it carries, detected code or math,
conversation depth, tools — and lets explicit simplicity cues ("short", "for kids", "one word") pull it
down. Reasoning verbs count only a little and only alongside that structure. Off by default: the replay
benchmarks decide whether it pays.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cascadeflow.errors import ConfigurationError
from cascadeflow.messages import Request
from cascadeflow.models import ModelConfig
from cascadeflow.routing.domains import _last_user_text, detect_domain
from cascadeflow.routing.route import Route

LEVELS = ((0.25, "simple"), (0.5, "moderate"), (0.75, "hard"), (1.01, "expert"))

_ENUMERATED = re.compile(r"^\s*(?:[-*•]|\d+[.)]|[a-z][.)])\s+\S", re.MULTILINE)
_CONSTRAINT = re.compile(r"\b(?:must|should|without|ensure|at (?:least|most)|no more than|exactly|"
                         r"handle|account for|given that|assuming|subject to)\b", re.IGNORECASE)
_REASONING = re.compile(r"\b(?:prove|derive|why|trade-?offs?|root cause|design|optimi[sz]e|diagnose|"
                        r"step[- ]by[- ]step|justify|implications?)\b", re.IGNORECASE)
_SIMPLE = re.compile(r"\b(?:short|brief(?:ly)?|simple|quick(?:ly)?|one (?:word|sentence|line)|yes or no|"
                     r"for (?:kids|children|a child|beginners)|in a few words|tl;?dr|just)\b", re.IGNORECASE)
_SENTENCE = re.compile(r"[.!?]+(?:\s|$)")


@dataclass(frozen=True, slots=True, kw_only=True)
class ComplexityEstimate:
    score: float  # 0 (trivial) .. 1 (expert)
    level: str  # simple | moderate | hard | expert
    reasons: tuple[str, ...]


def _level(score: float) -> str:
    return next(name for bound, name in LEVELS if score < bound)


def estimate_complexity(request: Request) -> ComplexityEstimate:
    """A 0..1 difficulty estimate of the last user turn, with the evidence that produced it."""
    text = _last_user_text(request)
    words = len(text.split())
    parts: list[tuple[float, str]] = []
    # length: nothing below ~25 words, saturating around 400
    length = max(0.0, min(1.0, math.log(max(words, 1) / 25, 16)))
    parts.append((0.30 * length, f"{words} words"))
    asks = text.count("?") + len(_ENUMERATED.findall(text))
    sentences = max(1, len(_SENTENCE.findall(text)))
    if asks > 1 or sentences > 3:
        parts.append((min(0.25, 0.06 * (asks + sentences - 2)), f"{asks} questions/items, {sentences} sentences"))
    constraints = len(_CONSTRAINT.findall(text))
    if constraints:
        parts.append((min(0.2, 0.07 * constraints), f"{constraints} constraints"))
    domain = detect_domain(text)
    if domain is not None:
        parts.append((0.2 + 0.15 * domain.score, f"{domain.domain.lower()} content ({domain.reason})"))
    reasoning = len(_REASONING.findall(text))
    if reasoning and (words > 25 or domain is not None or constraints):
        parts.append((min(0.2, 0.1 * reasoning), f"{reasoning} reasoning demands"))
    if len(request.messages) > 4:
        parts.append((min(0.15, 0.02 * len(request.messages)), f"{len(request.messages)} messages"))
    if request.tools:
        parts.append((0.05, f"{len(request.tools)} tools"))
    simple = len(_SIMPLE.findall(text))
    if simple:
        parts.append((-min(0.3, 0.15 * simple), f"{simple} simplicity cues"))
    score = max(0.0, min(1.0, sum(w for w, _ in parts)))
    return ComplexityEstimate(score=round(score, 3), level=_level(score),
                              reasons=tuple(why for w, why in parts if w))


class ComplexityRouter:
    """Pre-router: at `threshold` or above the request skips the cascade and goes to the last tier."""

    def __init__(self, threshold: float = 0.75):
        if not 0.0 < threshold <= 1.0:
            raise ConfigurationError(f"complexity threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold

    def decide(self, request: Request, tiers: Sequence[ModelConfig]) -> tuple[Route, ComplexityEstimate]:
        if not tiers:
            raise ConfigurationError("the complexity pre-router needs at least one tier")
        est = estimate_complexity(request)
        evidence = "; ".join(est.reasons) or "no evidence"
        details = {"complexity": est.score, "complexity_level": est.level}
        if est.score >= self.threshold and len(tiers) > 1:
            return Route((tiers[-1],), f"complexity {est.score:.2f} >= {self.threshold:.2f} ({evidence}); "
                                       f"straight to the strongest tier", kind="complexity", label="direct",
                         details=details), est
        return Route(tuple(tiers), f"complexity {est.score:.2f} ({est.level}); cascade", kind="complexity",
                     label="cascade", details=details), est
