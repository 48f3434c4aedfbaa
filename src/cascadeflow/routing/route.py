"""The `Route` every routing decision returns, and coercion of rule targets into model tiers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from cascadeflow.errors import ConfigurationError
from cascadeflow.messages import Request
from cascadeflow.models import ModelConfig, as_model_config

Target = str | ModelConfig | Sequence[str | ModelConfig]


@dataclass(frozen=True, slots=True)
class Route:
    """Where a request goes and why: one model, or a cascade of tiers (cheap -> expensive).

    `kind` names the router that decided ("severity", "rule", "task", "domain", "complexity", "default");
    `label` is the matched key ("P0", "memory_recall", "CODE"), used to break analytics down by route.
    """

    models: tuple[ModelConfig, ...]
    reason: str
    kind: str = "default"
    label: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def is_cascade(self) -> bool:
        return len(self.models) > 1

    @property
    def model(self) -> ModelConfig:
        """The first (cheapest) model of the route."""
        return self.models[0]

    @property
    def target(self) -> str:
        """'provider/model' for a single model, 'a -> b -> c' for a cascade."""
        return " -> ".join(m.id for m in self.models)

    def __str__(self) -> str:
        return f"{self.target} ({self.reason})"


@runtime_checkable
class Router(Protocol):
    """Anything that maps a request to a Route, or to None when it has no opinion."""

    def route(self, request: Request) -> Route | None: ...


def as_tiers(target: Target, *, what: str = "route target") -> tuple[ModelConfig, ...]:
    """A model id, a ModelConfig or a list of them (a cascade) -> a non-empty tuple of ModelConfigs."""
    if isinstance(target, (str, ModelConfig)):
        return (as_model_config(target),)
    if not isinstance(target, Sequence) or isinstance(target, (bytes, bytearray)):
        raise ConfigurationError(
            f"{what} must be a model id such as 'groq/llama3-8b-8192', a ModelConfig, or a list of them "
            f"(a cascade); got {type(target).__name__}")
    if not target:
        raise ConfigurationError(f"{what} is an empty list: give at least one model")
    return tuple(as_model_config(m) for m in target)
