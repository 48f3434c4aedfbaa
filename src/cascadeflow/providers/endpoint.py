"""Where a provider is reached and with which key: ModelConfig first, then the provider's environment variables.

Base URL: `ModelConfig.base_url` > `<PROVIDER>_BASE_URL` > the provider's default. Key: `ModelConfig.api_key`
> the provider's key variable (e.g. OPENAI_API_KEY); a missing required key raises MissingAPIKeyError naming
the variable, at construction, before any request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from cascadeflow.errors import ConfigurationError, MissingAPIKeyError
from cascadeflow.models import ModelConfig, ProviderFacts, Secret, provider_facts
from cascadeflow.trace.redact import redact_url


@dataclass(frozen=True, slots=True)
class Endpoint:
    provider: str
    base_url: str
    api_key: Secret | None = field(default=None, repr=False)


def resolve_endpoint(provider: str, *, base_url: str | None = None, api_key: Secret | str | None = None,
                     env: Mapping[str, str] | None = None) -> Endpoint:
    """The endpoint of `provider`, from explicit values, then the environment, then the defaults."""
    facts = provider_facts(provider)
    env = os.environ if env is None else env
    return Endpoint(provider, _base_url(facts, base_url, env), _api_key(facts, api_key, env))


def endpoint_for(cfg: ModelConfig, env: Mapping[str, str] | None = None) -> Endpoint:
    return resolve_endpoint(cfg.provider or "", base_url=cfg.base_url, api_key=cfg.api_key, env=env)


def _base_url(facts: ProviderFacts, explicit: str | None, env: Mapping[str, str]) -> str:
    url = explicit or (env.get(facts.base_url_env) if facts.base_url_env else None) or facts.base_url
    if not url:
        raise ConfigurationError(f"provider {facts.name!r} has no default base URL: pass base_url=")
    if not url.startswith(("http://", "https://")):
        where = f"base_url or {facts.base_url_env}" if facts.base_url_env else "base_url"
        raise ConfigurationError(f"{where} must start with http:// or https://, got {redact_url(url)}")
    return url.rstrip("/")


def _api_key(facts: ProviderFacts, explicit: Secret | str | None, env: Mapping[str, str]) -> Secret | None:
    if isinstance(explicit, Secret):
        return explicit
    if explicit:
        return Secret(explicit)
    value = env.get(facts.key_env) if facts.key_env else None
    if value:
        return Secret(value)
    if facts.key_required:
        raise MissingAPIKeyError(facts.name, facts.key_env or "an API key variable")
    return None


def redact(text: str, secret: Secret | None) -> str:
    """`text` with every occurrence of the key replaced, for server messages that echo what they received."""
    if secret is None or not secret.get():
        return text
    return text.replace(secret.get(), "****")
