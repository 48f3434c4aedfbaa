"""The gateway's configuration: where it listens, which stores it shares, and the model names clients may ask
for (a provider model, an alias, a cascade or a router), read from a TOML or YAML file.

    [gateway]
    host = "127.0.0.1"
    ledger = "redis://127.0.0.1:6379/0?prefix=gw"     # budgets (shared by every gateway process)
    keys = "redis://127.0.0.1:6379/0?prefix=gw"       # virtual keys
    audit = "gateway-audit.jsonl"

    [models.fast]
    model = "openai/gpt-4o-mini"
    [models.auto]
    cascade = ["openai/gpt-4o-mini", "openai/gpt-4o"]
    quality = { threshold = 0.7 }
    [models.oncall]
    router = { severity = { P0 = "openai/gpt-4o" }, default = "openai/gpt-4o-mini" }

This is the only gateway module that reads the environment: the key-hashing secret
($CASCADEFLOW_GATEWAY_SECRET) when the file names none.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cascadeflow.errors import ConfigurationError

SECRET_ENV = "CASCADEFLOW_GATEWAY_SECRET"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})

ModelTarget = str | dict[str, Any]  # "provider/model", or the fields of a ModelConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RouterConfig(_Strict):
    """A router: by severity (`metadata.severity`), by task type (`metadata.task_type`) or by rules on the
    request metadata (first match wins)."""

    severity: dict[str, ModelTarget | list[ModelTarget]] | None = None
    task: dict[str, ModelTarget | list[ModelTarget]] | None = None
    rules: list[dict[str, Any]] | None = None
    default: ModelTarget | list[ModelTarget] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> RouterConfig:
        kinds = [k for k in ("severity", "task", "rules") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("a router needs exactly one of severity = {...}, task = {...} or rules = [...]")
        return self


class ModelEntry(_Strict):
    """One model name clients may ask for: exactly one of model, alias, cascade or router."""

    model: ModelTarget | None = None
    alias: str | None = None
    cascade: list[ModelTarget] | None = None
    quality: dict[str, Any] | None = None
    router: RouterConfig | None = None
    description: str = ""

    @model_validator(mode="after")
    def _one_kind(self) -> ModelEntry:
        kinds = [k for k in ("model", "alias", "cascade", "router") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"a model name needs exactly one of model, alias, cascade or router (got "
                             f"{', '.join(kinds) or 'none'})")
        if self.cascade is not None and len(self.cascade) < 2:
            raise ValueError("a cascade needs at least two tiers (cheap first)")
        return self


class GatewayConfig(_Strict):
    """Everything `create_app` needs. `keys` None: no key store, loopback only, any client key accepted."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    ledger: str | None = None  # a ledger URL (memory://, sqlite://, redis://, postgresql://)
    keys: str | None = None  # a key store URL (sqlite://, redis://, postgresql://)
    key_secret: str | None = Field(default=None, repr=False)  # keys are stored as HMAC-SHA256 under this
    audit: str | None = None  # an audit sink spec (a JSONL path, sqlite:///..., "off"); None: the default log
    metrics: bool = True  # /metrics (needs the prometheus extra)
    cache: dict[str, Any] | None = None  # CacheConfig fields; None: no response cache
    models: dict[str, ModelEntry] = Field(default_factory=dict)
    allow_provider_models: bool = False  # also accept any 'provider/model' id not listed in models
    shutdown_grace_seconds: float = Field(default=30.0, gt=0)
    key_cache_seconds: float = Field(default=5.0, ge=0)  # how long a looked-up key is reused before re-reading

    @model_validator(mode="after")
    def _aliases_resolve(self) -> GatewayConfig:
        for name, entry in self.models.items():
            seen = {name}
            while entry.alias is not None:
                if entry.alias in seen:
                    raise ValueError(f"model alias loop: {' -> '.join([*seen, entry.alias])}")
                if entry.alias not in self.models:
                    raise ValueError(f"model {name!r} is an alias of {entry.alias!r}, which is not configured")
                seen.add(entry.alias)
                entry = self.models[entry.alias]
        return self

    @property
    def loopback_only(self) -> bool:
        return self.host in LOOPBACK_HOSTS

    def hashing_secret(self) -> str | None:
        return self.key_secret or os.environ.get(SECRET_ENV) or None


def gateway_config(data: Mapping[str, Any] | GatewayConfig | None = None, **overrides: Any) -> GatewayConfig:
    """A GatewayConfig from a dict (the file's `[gateway]` table merged with `models`), or a typed
    ConfigurationError naming every problem."""
    if isinstance(data, GatewayConfig):
        return data.model_copy(update=overrides) if overrides else data
    raw = dict(data or {})
    merged = {**dict(raw.pop("gateway", None) or {}), **raw, **{k: v for k, v in overrides.items() if v is not None}}
    try:
        return GatewayConfig.model_validate(merged)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in exc.errors())
        raise ConfigurationError(f"gateway configuration: {problems}") from None


def load_config(path: str | os.PathLike[str], **overrides: Any) -> GatewayConfig:
    """Read a gateway configuration file (.toml, .yaml or .yml)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read the gateway configuration {file}: {exc.strerror}") from None
    kind: Literal["toml", "yaml"] = "yaml" if file.suffix.lower() in (".yaml", ".yml") else "toml"
    import yaml

    try:
        data = tomllib.loads(text) if kind == "toml" else (yaml.safe_load(text) or {})
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"{file} is not valid {kind.upper()}: {exc}") from None
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"{file}: the configuration must be a table of settings")
    return gateway_config(data, **overrides)
