"""Domain routing: `DomainConfig` maps domains to cascades; a rule-based detector (code, math) with an
optional classifier hook (e.g. an embedding model) for what the rules cannot tell."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from cascadeflow.errors import ConfigurationError
from cascadeflow.messages import Request
from cascadeflow.models import ModelConfig
from cascadeflow.routing.route import Route, Target, as_tiers

DEFAULT_DOMAIN = "DEFAULT"


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainGuess:
    domain: str
    score: float  # 0..1, strength of the evidence
    reason: str


# Each pattern is evidence with a weight; a domain needs enough total evidence, not one keyword.
_CODE_EVIDENCE: tuple[tuple[re.Pattern[str], float, str], ...] = (
    (re.compile(r"```"), 1.0, "code fence"),
    (re.compile(r"Traceback \(most recent call last\)"), 1.0, "Python stack trace"),
    (re.compile(r"^\s+at [\w$.<>]+\([\w$]+\.(?:java|kt|scala|js|ts):\d+\)", re.MULTILINE), 1.0, "JVM/JS stack trace"),
    (re.compile(r"\b(?:[A-Z]\w*(?:Error|Exception))\b(?::|\s+at\b|\s+in\b)"), 0.5, "exception name"),
    (re.compile(r"^\s*(?:def|class)\s+\w+\s*[(:]", re.MULTILINE), 0.8, "Python definition"),
    (re.compile(r"^\s*(?:from\s+[\w.]+\s+)?import\s+[\w.]+", re.MULTILINE), 0.6, "import statement"),
    (re.compile(r"\bfunction\s+\w*\s*\([^)]*\)\s*\{"), 0.8, "JavaScript function"),
    (re.compile(r"\b(?:const|let|var)\s+\w+\s*=\s*"), 0.4, "variable declaration"),
    (re.compile(r"#include\s*<\w+(?:\.h)?>"), 1.0, "C include"),
    (re.compile(r"\b(?:public|private|static)\s+(?:static\s+)?\w+(?:<[^>]*>)?\s+\w+\s*\("), 0.8, "method signature"),
    (re.compile(r"\bSELECT\b[\s\S]{1,200}?\bFROM\b|\bINSERT\s+INTO\b|\bCREATE\s+TABLE\b"), 0.8, "SQL"),
    (re.compile(r"\b\w+\([^()]*\)\s*(?:;|\{|=>)"), 0.3, "call syntax"),
    (re.compile(r"\b(?:Python|JavaScript|TypeScript|Rust|Golang|Java|C\+\+|SQL|Bash|regex)\b", re.IGNORECASE), 0.3,
     "language named"),
    (re.compile(r"\b(?:compile|segfault|null pointer|stack overflow|refactor|unit test|runtime error)\b", re.IGNORECASE),
     0.3, "programming term"),
)
_MATH_EVIDENCE: tuple[tuple[re.Pattern[str], float, str], ...] = (
    (re.compile(r"\d+(?:\.\d+)?\s*[-+*/×÷^]\s*\d+(?:\.\d+)?\s*(?:=|[-+*/×÷^])"), 0.8, "arithmetic expression"),
    (re.compile(r"\\(?:frac|sqrt|int|sum|lim)\b|\$[^$]+\$"), 1.0, "LaTeX"),
    (re.compile(r"\b(?:integral|derivative|equation|theorem|polynomial|probability|matrix)\b", re.IGNORECASE), 0.5,
     "mathematical object"),
    (re.compile(r"\b(?:solve|compute|calculate|prove)\b[^.?!]{0,60}\d", re.IGNORECASE), 0.6, "calculation request"),
    (re.compile(r"\b[a-z]\s*\^\s*\d|\b\d*[a-z]\s*[+-]\s*\d+\s*=", re.IGNORECASE), 0.7, "algebra"),
    (re.compile(r"\b\d+(?:\.\d+)?\s*%\s+of\b|\bhow (?:many|much)\b[^.?!]{0,80}\d", re.IGNORECASE), 0.5, "word problem"),
)
_RULES = (("CODE", _CODE_EVIDENCE), ("MATH", _MATH_EVIDENCE))
DETECTION_THRESHOLD = 0.8  # total evidence weight needed; one weak hint ("Python") is not enough


def detect_domain(text: str) -> DomainGuess | None:
    """The best rule-detected domain of `text` (CODE or MATH), or None when the evidence is too thin."""
    best: DomainGuess | None = None
    for domain, evidence in _RULES:
        total, reasons = 0.0, []
        for pattern, weight, label in evidence:
            if pattern.search(text):
                total += weight
                reasons.append(label)
        if total >= DETECTION_THRESHOLD and (best is None or total > best.score):
            best = DomainGuess(domain=domain, score=min(total / 2.0, 1.0), reason=", ".join(reasons))
    return best


Classifier = Callable[[str], "tuple[str, float] | None"]


def _last_user_text(request: Request) -> str:
    for message in reversed(request.messages):
        if message.role == "user":
            return message.text
    return request.messages[-1].text if request.messages else ""


class DomainConfig:
    """Domain -> cascade map. `DEFAULT` is used when no domain is detected (or the detected one has no entry).

    Detection order: `request.metadata["domain"]` when the caller knows it, the rule detector, then the
    optional `classifier(text) -> (domain, confidence) | None` (accepted at `min_confidence` or above).
    """

    def __init__(self, domains: Mapping[str, Target], *, classifier: Classifier | None = None,
                 min_confidence: float = 0.5, detector: Callable[[str], DomainGuess | None] = detect_domain):
        if not isinstance(domains, Mapping) or not domains:
            raise ConfigurationError(
                'DomainConfig needs domains={"CODE": [models...], "DEFAULT": [models...]}')
        self.domains: dict[str, tuple[ModelConfig, ...]] = {
            str(name).upper(): as_tiers(target, what=f"domain {name!r}") for name, target in domains.items()}
        if not 0.0 <= min_confidence <= 1.0:
            raise ConfigurationError(f"min_confidence must be between 0 and 1, got {min_confidence}")
        self.classifier = classifier
        self.min_confidence = min_confidence
        self.detector = detector

    @property
    def default(self) -> tuple[ModelConfig, ...] | None:
        return self.domains.get(DEFAULT_DOMAIN)

    def detect(self, request: Request) -> DomainGuess | None:
        given = request.metadata.get("domain")
        if isinstance(given, str) and given:
            return DomainGuess(domain=given.upper(), score=1.0, reason="domain given in metadata")
        text = _last_user_text(request)
        guess = self.detector(text)
        if guess is not None:
            return guess
        if self.classifier is not None:
            found = self.classifier(text)
            if found is not None and found[1] >= self.min_confidence:
                return DomainGuess(domain=str(found[0]).upper(), score=float(found[1]),
                                   reason=f"classifier confidence {found[1]:.2f}")
        return None

    def route(self, request: Request) -> Route | None:
        guess = self.detect(request)
        if guess is not None and guess.domain in self.domains:
            return Route(self.domains[guess.domain], f"domain={guess.domain} ({guess.reason})", kind="domain",
                         label=guess.domain, details={"domain_score": guess.score})
        if self.default is None:
            return None
        why = (f"domain={guess.domain} has no cascade; DEFAULT" if guess is not None
               else "no domain detected; DEFAULT")
        return Route(self.default, why, kind="domain", label=DEFAULT_DOMAIN)

    def all_models(self) -> Sequence[ModelConfig]:
        seen: dict[str, ModelConfig] = {}
        for tiers in self.domains.values():
            for cfg in tiers:
                seen.setdefault(cfg.id, cfg)
        return list(seen.values())
