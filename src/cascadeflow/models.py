"""Model facts and `ModelConfig`: which provider serves a model, at what declared price, with which abilities.

Provider names appear here (the facts) and under `providers/`; nowhere else.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from cascadeflow.errors import ConfigurationError
from cascadeflow.known_secrets import remember_secret


class Secret:
    """An API key that never shows itself in repr, str, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value
        remember_secret(value)  # scrubbed from every error text stored or printed from now on

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('****')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class ProviderFacts:
    """What cascadeflow knows about a provider without calling it."""

    name: str
    wire: str  # "openai_chat" | "anthropic" | "local" | "replay"
    key_env: str | None  # environment variable holding the API key; None: no key needed
    base_url: str | None
    base_url_env: str | None
    price_id: str | None  # provider id in genai-prices; None: not priced there
    self_hosted: bool = False  # no API price: $0 unless a compute price is declared
    logprobs: bool = False  # returns token logprobs when asked
    key_required: bool = True


PROVIDERS: dict[str, ProviderFacts] = {
    f.name: f
    for f in (
        ProviderFacts(name="openai", wire="openai_chat", key_env="OPENAI_API_KEY",
                      base_url="https://api.openai.com/v1", base_url_env="OPENAI_BASE_URL", price_id="openai",
                      logprobs=True),
        ProviderFacts(name="anthropic", wire="anthropic", key_env="ANTHROPIC_API_KEY",
                      base_url="https://api.anthropic.com", base_url_env="ANTHROPIC_BASE_URL",
                      price_id="anthropic"),
        ProviderFacts(name="groq", wire="openai_chat", key_env="GROQ_API_KEY",
                      base_url="https://api.groq.com/openai/v1", base_url_env="GROQ_BASE_URL",
                      price_id="groq"),
        ProviderFacts(name="together", wire="openai_chat", key_env="TOGETHER_API_KEY",
                      base_url="https://api.together.xyz/v1", base_url_env="TOGETHER_BASE_URL",
                      price_id="together", logprobs=True),
        ProviderFacts(name="openrouter", wire="openai_chat", key_env="OPENROUTER_API_KEY",
                      base_url="https://openrouter.ai/api/v1", base_url_env="OPENROUTER_BASE_URL",
                      price_id="openrouter"),
        ProviderFacts(name="deepseek", wire="openai_chat", key_env="DEEPSEEK_API_KEY",
                      base_url="https://api.deepseek.com/v1", base_url_env="DEEPSEEK_BASE_URL",
                      price_id="deepseek", logprobs=True),
        ProviderFacts(name="huggingface", wire="openai_chat", key_env="HF_TOKEN",
                      base_url="https://router.huggingface.co/v1", base_url_env="HF_BASE_URL", price_id=None),
        ProviderFacts(name="vllm", wire="openai_chat", key_env="VLLM_API_KEY",
                      base_url="http://localhost:8000/v1", base_url_env="VLLM_BASE_URL", price_id=None,
                      self_hosted=True, logprobs=True, key_required=False),
        ProviderFacts(name="ollama", wire="openai_chat", key_env="OLLAMA_API_KEY",
                      base_url="http://localhost:11434/v1", base_url_env="OLLAMA_BASE_URL", price_id=None,
                      self_hosted=True, logprobs=True, key_required=False),
        ProviderFacts(name="local", wire="local", key_env=None, base_url=None, base_url_env=None,
                      price_id=None, self_hosted=True, logprobs=True, key_required=False),
        ProviderFacts(name="replay", wire="replay", key_env=None, base_url=None, base_url_env=None,
                      price_id=None, key_required=False),
    )
}

# Used only when a ModelConfig names no provider, as in ModelConfig(name="gpt-4o") or
# router.register(..., model="claude-3-5-haiku-20241022").
_PREFIX_PROVIDER = (("claude", "anthropic"), ("gpt-", "openai"), ("o1", "openai"), ("o3", "openai"),
                    ("o4", "openai"), ("chatgpt", "openai"), ("deepseek-", "deepseek"))


def infer_provider(model: str) -> str | None:
    lowered = model.lower()
    for prefix, provider in _PREFIX_PROVIDER:
        if lowered.startswith(prefix):
            return provider
    return None


def provider_facts(name: str) -> ProviderFacts:
    try:
        return PROVIDERS[name]
    except KeyError:
        from cascadeflow.errors import UnknownProviderError

        raise UnknownProviderError(name, list(PROVIDERS)) from None


def _non_negative(name: str, value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise ConfigurationError(f"{name} must be a number, got {value!r}")
    try:
        dec = Decimal(str(value))
    except ArithmeticError:  # decimal.InvalidOperation
        raise ConfigurationError(f"{name} must be a number, got {value!r}") from None
    if not dec.is_finite() or dec < 0:  # NaN first: comparing a Decimal NaN raises
        raise ConfigurationError(f"{name} must be a non-negative finite number, got {value!r}")
    return dec


MIN_TIMEOUT_S = 0.01  # below this no request can complete: a typo (1e-9, milliseconds for seconds)


def validate_timeout(name: str, value: Any) -> float:
    """`value` as seconds, or ConfigurationError naming `name` (not a number, NaN, infinite, below 10 ms)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{name} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value < MIN_TIMEOUT_S:
        raise ConfigurationError(f"{name} must be a finite number of seconds >= {MIN_TIMEOUT_S:g}, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """One model a cascade, route or call may use.

    Prices are optional overrides of the price book: `cost` is USD per 1K tokens (input and output alike), `cost_per_token` USD per token, or separate `input_price_per_million` /
    `output_price_per_million`. `compute_cost_per_hour` prices a self-hosted model by machine time.
    """

    name: str
    provider: str | None = None
    cost: float | Decimal | None = None
    cost_per_token: float | Decimal | None = None
    input_price_per_million: float | Decimal | None = None
    output_price_per_million: float | Decimal | None = None
    compute_cost_per_hour: float | Decimal | None = None
    base_url: str | None = None
    api_key: Secret | str | None = field(default=None, repr=False)
    max_output_tokens: int | None = None
    context_window: int | None = None
    supports_logprobs: bool | None = None
    supports_tools: bool = True
    domains: tuple[str, ...] = ()
    timeout: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # provider-specific options (e.g. gguf path)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigurationError("ModelConfig needs a non-empty model name")
        provider = self.provider
        name = self.name
        if provider is None and "/" in name:
            head, tail = name.split("/", 1)
            if head in PROVIDERS:
                provider, name = head, tail
        if provider is None:
            provider = infer_provider(name)
        if provider is None:
            raise ConfigurationError(
                f"cannot tell which provider serves {self.name!r}: write 'provider/model' "
                f"(e.g. 'groq/{self.name}') or pass provider=; known providers: {', '.join(sorted(PROVIDERS))}"
            )
        provider_facts(provider)  # raises UnknownProviderError listing the known ones
        object.__setattr__(self, "provider", provider)
        object.__setattr__(self, "name", name)
        for attr in ("cost", "cost_per_token", "input_price_per_million", "output_price_per_million",
                     "compute_cost_per_hour"):
            object.__setattr__(self, attr, _non_negative(attr, getattr(self, attr)))
        if isinstance(self.api_key, str):
            object.__setattr__(self, "api_key", Secret(self.api_key))
        if self.max_output_tokens is not None and self.max_output_tokens <= 0:
            raise ConfigurationError(f"max_output_tokens must be positive, got {self.max_output_tokens}")
        if self.timeout is not None:
            object.__setattr__(self, "timeout", validate_timeout("ModelConfig.timeout", self.timeout))
        if isinstance(self.domains, str):
            object.__setattr__(self, "domains", (self.domains,))
        else:
            object.__setattr__(self, "domains", tuple(self.domains))

    @property
    def id(self) -> str:
        """The canonical 'provider/model' string."""
        return f"{self.provider}/{self.name}"

    @property
    def facts(self) -> ProviderFacts:
        return PROVIDERS[self.provider]  # type: ignore[index]

    @property
    def has_price_override(self) -> bool:
        return any(v is not None for v in (self.cost, self.cost_per_token, self.input_price_per_million,
                                           self.output_price_per_million, self.compute_cost_per_hour))

    def with_(self, **changes: Any) -> ModelConfig:
        return replace(self, **changes)

    def __str__(self) -> str:
        return self.id


def as_model_config(model: str | ModelConfig) -> ModelConfig:
    """'groq/llama3-70b-8192', a bare name with a well-known prefix, or a ModelConfig."""
    if isinstance(model, ModelConfig):
        return model
    if not isinstance(model, str):
        raise ConfigurationError(f"a model must be 'provider/model' or a ModelConfig, got {type(model).__name__}")
    return ModelConfig(name=model)
