"""The provider protocol and the registry that builds one adapter per (provider, base URL, key).

A provider has a name, `complete(request)` and `stream(request)`; `request.model` is the provider's own
model id. A provider only talks to one host: budgets, policy, the response cache and the audit record are
steps of the one pipeline around it (`cascadeflow.runtime.pipeline`), and the cascade calls that pipeline once
per tier, so none of them is a provider wrapper.
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator, Callable
from typing import Protocol, runtime_checkable

from cascadeflow.messages import Request, Response, StreamEvent
from cascadeflow.models import ModelConfig, Secret, provider_facts


@runtime_checkable
class Provider(Protocol):
    name: str

    async def complete(self, request: Request) -> Response: ...

    def stream(self, request: Request) -> AsyncIterator[StreamEvent]: ...


ProviderFactory = Callable[[ModelConfig], Provider]

_factories: dict[str, ProviderFactory] = {}
_instances: dict[tuple, Provider] = {}
_lock = threading.Lock()


def register_provider(wire_or_name: str, factory: ProviderFactory | None) -> None:
    """Register a factory for a wire format ("openai_chat", "anthropic", "local", ...) or a provider name;
    None removes a registration."""
    with _lock:
        if factory is None:
            _factories.pop(wire_or_name, None)
        else:
            _factories[wire_or_name] = factory
        _instances.clear()


def _builtin_factory(wire: str) -> ProviderFactory:
    if wire == "openai_chat":
        from cascadeflow.providers.openai_chat import OpenAIChat

        return OpenAIChat.from_config
    if wire == "anthropic":
        from cascadeflow.providers.anthropic import AnthropicMessages

        return AnthropicMessages.from_config
    if wire == "local":
        from cascadeflow.providers.local import LocalLlama

        return LocalLlama.from_config
    raise LookupError(wire)


def provider_for(cfg: ModelConfig) -> Provider:
    """The (cached) adapter serving `cfg`. Raises ConfigurationError subclasses before any I/O."""
    facts = provider_facts(cfg.provider or "")
    # The environment is part of the key: an adapter built before OPENAI_BASE_URL (or a key) changed must
    # not keep serving the old host. A variable is read only where the config leaves the value to it (the
    # endpoint's precedence), so a fully configured model costs no environment read per attempt.
    env = (None if isinstance(cfg.api_key, Secret) or cfg.api_key else os.environ.get(facts.key_env or ""),
           None if cfg.base_url else os.environ.get(facts.base_url_env or ""))
    # Every ModelConfig field an adapter reads when it is built: two configs differing in one of them must
    # not share an adapter (a ModelConfig(timeout=1) served by an adapter built without it would ignore it).
    key = (cfg.provider, cfg.base_url, cfg.api_key, cfg.timeout, env,
           tuple(sorted((k, str(v)) for k, v in cfg.extra.items())) if cfg.extra else ())
    found = _instances.get(key)
    if found is not None:
        return found
    factory = _factories.get(cfg.provider or "") or _factories.get(facts.wire) or _builtin_factory(facts.wire)
    provider = factory(cfg)
    with _lock:
        _instances.setdefault(key, provider)
        return _instances[key]


def clear_provider_cache() -> None:
    with _lock:
        _instances.clear()
