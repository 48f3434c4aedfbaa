"""Routing: pure functions from a request to a `Route` (target model or cascade, and the reason)."""

from cascadeflow.routing.complexity import ComplexityEstimate, ComplexityRouter, estimate_complexity
from cascadeflow.routing.domains import DomainConfig, DomainGuess, detect_domain
from cascadeflow.routing.route import Route, Router, as_tiers
from cascadeflow.routing.rules import DEFAULT_SEVERITY_MAP, Rule, RuleRouter, SeverityRouter
from cascadeflow.routing.tasks import ModelRouter, TaskType

__all__ = [
    "DEFAULT_SEVERITY_MAP",
    "ComplexityEstimate",
    "ComplexityRouter",
    "DomainConfig",
    "DomainGuess",
    "ModelRouter",
    "Route",
    "Router",
    "Rule",
    "RuleRouter",
    "SeverityRouter",
    "TaskType",
    "as_tiers",
    "detect_domain",
    "estimate_complexity",
]
