"""The gateway: an OpenAI- and Anthropic-compatible HTTP server where every call takes the one pipeline,
with virtual keys and per-key budgets (docs/gateway.md). Needs the `gateway` extra; importing this package
imports none of it until `create_app` or `serve` is used."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cascadeflow.lazy import lazy_attribute

_LAZY = {
    "GatewayConfig": "cascadeflow.gateway.config",
    "create_app": "cascadeflow.gateway.app",
    "load_config": "cascadeflow.gateway.config",
    "serve": "cascadeflow.gateway.server",
}

__all__ = ["GatewayConfig", "create_app", "load_config", "serve"]


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, _LAZY, name)


if TYPE_CHECKING:
    from cascadeflow.gateway.app import create_app
    from cascadeflow.gateway.config import GatewayConfig, load_config
    from cascadeflow.gateway.server import serve
