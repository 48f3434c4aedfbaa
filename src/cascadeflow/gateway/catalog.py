"""The model names the gateway serves: each configured name resolved once, at start, to what a call is sent
to (one model, a cascade with its quality bar, or a router) and the reason recorded with every answer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cascadeflow.errors import InvalidRequestError
from cascadeflow.gateway.config import GatewayConfig, ModelEntry, ModelTarget, RouterConfig
from cascadeflow.models import ModelConfig, as_model_config


@dataclass(frozen=True, slots=True)
class ServedModel:
    """What a public model name stands for: `tiers` (one model, or a cascade cheap -> expensive) or a
    `router` choosing them per request from its metadata."""

    name: str
    tiers: tuple[ModelConfig, ...] = ()
    router: Any = None
    quality: Any = None
    reason: str = ""
    kind: str = "model"  # "model" | "alias" | "cascade" | "router" | "provider"

    def describe(self) -> dict[str, Any]:
        """The /v1/models entry."""
        target = " -> ".join(m.id for m in self.tiers) if self.tiers else "router"
        return {"id": self.name, "object": "model", "created": 0, "owned_by": "cascadeflow",
                "cascadeflow": {"kind": self.kind, "target": target}}


def _model(target: ModelTarget) -> ModelConfig:
    if isinstance(target, str):
        return as_model_config(target)
    return ModelConfig(**target)


def _tiers(target: ModelTarget | list[ModelTarget]) -> list[ModelConfig] | ModelConfig:
    return [_model(t) for t in target] if isinstance(target, list) else _model(target)


def _router(config: RouterConfig) -> Any:
    from cascadeflow.routing.rules import Rule, RuleRouter, SeverityRouter
    from cascadeflow.routing.tasks import ModelRouter

    default = _tiers(config.default) if config.default is not None else None
    if config.severity is not None:
        return SeverityRouter({k: _tiers(v) for k, v in config.severity.items()}, default=default)
    if config.task is not None:
        router = ModelRouter(default=default)
        for task, target in config.task.items():
            router.register(task, model=_tiers(target))
        return router
    rules = [Rule(name=str(r.get("name") or f"rule{i}"), when=dict(r.get("when") or {}), target=_tiers(r["target"]),
                  reason=r.get("reason")) for i, r in enumerate(config.rules or ())]
    return RuleRouter(rules, default=default)


def _served(name: str, entry: ModelEntry, models: Mapping[str, ModelEntry]) -> ServedModel:
    via = name
    while entry.alias is not None:  # the config checked that aliases resolve without loops
        via, entry = entry.alias, models[entry.alias]
    kind = "alias" if via != name else "model"
    if entry.model is not None:
        model = _model(entry.model)
        return ServedModel(name, (model,), reason=f"{name} -> {model.id}", kind=kind)
    if entry.cascade is not None:
        from cascadeflow.cascade.quality import QualityConfig

        tiers = tuple(_model(t) for t in entry.cascade)
        quality = QualityConfig(**entry.quality) if entry.quality else None
        return ServedModel(name, tiers, quality=quality, reason=f"{name}: cascade of {len(tiers)} tiers",
                           kind="cascade" if kind == "model" else kind)
    assert entry.router is not None
    return ServedModel(name, router=_router(entry.router), reason="", kind="router" if kind == "model" else kind)


class Catalog:
    """Public model name -> ServedModel, built from the configuration (errors surface at start)."""

    def __init__(self, config: GatewayConfig):
        self.allow_provider_models = config.allow_provider_models
        self.served = {name: _served(name, entry, config.models) for name, entry in config.models.items()}

    def resolve(self, name: Any) -> ServedModel:
        if not isinstance(name, str) or not name:
            raise InvalidRequestError("'model' must be a non-empty string naming a configured model")
        found = self.served.get(name)
        if found is not None:
            return found
        if self.allow_provider_models and "/" in name:
            model = as_model_config(name)
            return ServedModel(name, (model,), reason="provider model named by the client", kind="provider")
        known = ", ".join(sorted(self.served)) or "none configured"
        raise InvalidRequestError(f"unknown model {name!r}; this gateway serves: {known}")

    def listing(self) -> list[dict[str, Any]]:
        return [served.describe() for served in self.served.values()]
