"""Rule maps on request metadata: the severity map (with a default) and first-match predicate rules."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cascadeflow.errors import ConfigurationError
from cascadeflow.messages import Request
from cascadeflow.models import ModelConfig
from cascadeflow.routing.route import Route, Target, as_tiers

# The incident-response map: capable models for P0/P1, cheaper ones for routine alerts.
DEFAULT_SEVERITY_MAP: dict[str, str] = {
    "P0": "groq/llama3-70b-8192",
    "P1": "groq/llama3-70b-8192",
    "P2": "groq/llama3-8b-8192",
    "P3": "groq/llama3-8b-8192",
    "INFO": "groq/gemma2-9b-it",
}
DEFAULT_SEVERITY_FALLBACK = "groq/llama3-8b-8192"

Predicate = Callable[[Mapping[str, Any]], bool]


class SeverityRouter:
    """Routes on `request.metadata[key]` (default "severity") through a severity -> target map.

    A severity missing from the map (or absent) goes to `default`, and the reason says so; severities are
    matched case-insensitively ("p0" == "P0").
    """

    def __init__(self, mapping: Mapping[str, Target] | None = None, *, default: Target | None = DEFAULT_SEVERITY_FALLBACK,
                 key: str = "severity"):
        raw = DEFAULT_SEVERITY_MAP if mapping is None else mapping
        if not isinstance(raw, Mapping) or not raw:
            raise ConfigurationError("the severity map must be a non-empty dict such as {'P0': 'groq/llama3-70b-8192'}")
        self.key = key
        self.mapping: dict[str, tuple[ModelConfig, ...]] = {
            str(sev).upper(): as_tiers(target, what=f"severity {sev!r}") for sev, target in raw.items()}
        self.default = as_tiers(default, what="default") if default is not None else None

    def model_for(self, severity: str | None) -> tuple[ModelConfig, ...]:
        return self.route_severity(severity).models

    def route_severity(self, severity: str | None) -> Route:
        label = str(severity).upper() if severity is not None else None
        if label is not None and label in self.mapping:
            return Route(self.mapping[label], f"{self.key}={label}", kind="severity", label=label)
        if self.default is None:
            known = ", ".join(self.mapping)
            raise ConfigurationError(f"no route for {self.key}={severity!r} and no default; known: {known}")
        why = f"{self.key}={label} not in map; default" if label is not None else f"no {self.key}; default"
        return Route(self.default, why, kind="severity", label=label)

    def route(self, request: Request) -> Route:
        return self.route_severity(request.metadata.get(self.key))


def _matcher(when: Predicate | Mapping[str, Any]) -> Predicate:
    if callable(when):
        return when
    if not isinstance(when, Mapping) or not when:
        raise ConfigurationError("a rule's `when` must be a callable of the metadata or a non-empty dict")
    expected = dict(when)

    def matches(meta: Mapping[str, Any]) -> bool:
        for key, want in expected.items():
            have = meta.get(key)
            # a list/set/tuple means "any of these values"
            if isinstance(want, (list, tuple, set, frozenset)):
                if have not in want:
                    return False
            elif have != want:
                return False
        return True

    return matches


def _describe(when: Predicate | Mapping[str, Any]) -> str:
    if isinstance(when, Mapping):
        return ", ".join(f"{k}={v}" for k, v in when.items())
    return getattr(when, "__name__", "predicate")


@dataclass(frozen=True)
class Rule:
    """When `when` holds for a request's metadata, send it to `target` (a model or a cascade)."""

    name: str
    when: Predicate | Mapping[str, Any]
    target: Target
    reason: str | None = None

    def compile(self) -> tuple[Predicate, tuple[ModelConfig, ...], str]:
        tiers = as_tiers(self.target, what=f"rule {self.name!r} target")
        return _matcher(self.when), tiers, self.reason or _describe(self.when)


class RuleRouter:
    """First matching rule wins; no match -> `default` (or None, letting the caller use its own models)."""

    def __init__(self, rules: Sequence[Rule], *, default: Target | None = None):
        if not rules:
            raise ConfigurationError("RuleRouter needs at least one Rule")
        names = [r.name for r in rules]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"rule names must be unique, got {names}")
        self._rules = [(rule.name, *rule.compile()) for rule in rules]
        self.default = as_tiers(default, what="default") if default is not None else None

    def route(self, request: Request) -> Route | None:
        meta = request.metadata
        for name, predicate, tiers, reason in self._rules:
            try:
                hit = predicate(meta)
            except Exception as exc:  # a buggy predicate is a configuration error, named
                raise ConfigurationError(f"rule {name!r} raised {type(exc).__name__}: {exc}") from exc
            if hit:
                return Route(tiers, reason, kind="rule", label=name)
        if self.default is None:
            return None
        return Route(self.default, "no rule matched; default", kind="rule", label=None)
