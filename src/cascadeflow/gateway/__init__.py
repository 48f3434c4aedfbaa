"""The gateway: an OpenAI- and Anthropic-compatible HTTP server where every call takes the one pipeline,
with virtual keys and per-key budgets (docs/gateway.md). Needs the `gateway` extra; importing this package
imports none of it until `create_app` or `serve` is used."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

_LAZY = {
    "GatewayConfig": "cascadeflow.gateway.config",
    "create_app": "cascadeflow.gateway.app",
    "load_config": "cascadeflow.gateway.config",
    "serve": "cascadeflow.gateway.server",
}

__all__ = ["GatewayConfig", "create_app", "load_config", "serve"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cascadeflow.gateway' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module), name)


if TYPE_CHECKING:
    from cascadeflow.gateway.app import create_app
    from cascadeflow.gateway.config import GatewayConfig, load_config
    from cascadeflow.gateway.server import serve
