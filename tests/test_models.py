"""Model strings, provider facts, ModelConfig validation and secrets."""

from __future__ import annotations

import logging
import pickle
from decimal import Decimal

import pytest

from cascadeflow.errors import ConfigurationError, UnknownProviderError
from cascadeflow.models import PROVIDERS, ModelConfig, Secret, as_model_config, infer_provider, provider_facts


@pytest.mark.parametrize(("text", "provider", "name"), [
    ("groq/llama3-70b-8192", "groq", "llama3-70b-8192"),
    ("openai/gpt-4o-mini", "openai", "gpt-4o-mini"),
    ("anthropic/claude-3-5-haiku-20241022", "anthropic", "claude-3-5-haiku-20241022"),
    ("together/meta-llama/Llama-3.3-70B-Instruct-Turbo", "together", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
    ("local/smollm2", "local", "smollm2"),
])
def test_provider_slash_model_strings_split_on_the_first_slash(text: str, provider: str, name: str) -> None:
    cfg = as_model_config(text)
    assert (cfg.provider, cfg.name, cfg.id, str(cfg)) == (provider, name, text, text)


def test_bare_names_with_well_known_prefixes_infer_their_provider() -> None:
    assert ModelConfig(name="gpt-4o").provider == "openai"
    assert ModelConfig(name="claude-3-5-haiku-20241022").provider == "anthropic"
    assert infer_provider("o3-mini") == "openai"
    assert infer_provider("llama3-70b-8192") is None


def test_explicit_provider_keeps_slashes_in_the_model_name() -> None:
    cfg = ModelConfig(name="meta-llama/Llama-3.1-8B-Instruct", provider="huggingface")
    assert (cfg.provider, cfg.name) == ("huggingface", "meta-llama/Llama-3.1-8B-Instruct")


def test_unknown_provider_error_lists_the_known_ones() -> None:
    with pytest.raises(UnknownProviderError) as caught:
        ModelConfig(name="llama3", provider="nosuchcloud")
    message = str(caught.value)
    assert "nosuchcloud" in message
    for known in ("anthropic", "groq", "local", "openai", "together"):
        assert known in message
    assert caught.value.known == sorted(PROVIDERS)


def test_a_bare_name_nobody_serves_explains_the_provider_model_form() -> None:
    with pytest.raises(ConfigurationError, match="provider/model"):
        as_model_config("llama3-70b-8192")


@pytest.mark.parametrize("bad", ["", "   ", None, 42])
def test_model_name_must_be_a_non_empty_string(bad: object) -> None:
    with pytest.raises(ConfigurationError):
        ModelConfig(name=bad)  # type: ignore[arg-type]


def test_as_model_config_rejects_non_strings() -> None:
    with pytest.raises(ConfigurationError, match="ModelConfig"):
        as_model_config(3.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["cost", "cost_per_token", "input_price_per_million",
                                   "output_price_per_million", "compute_cost_per_hour"])
@pytest.mark.parametrize("bad", [-0.01, "cheap", True, float("inf"), float("nan"), [1]])
def test_prices_must_be_non_negative_finite_numbers(field: str, bad: object) -> None:
    with pytest.raises(ConfigurationError, match=field):
        ModelConfig(name="openai/gpt-4o", **{field: bad})


def test_prices_become_decimals() -> None:
    cfg = ModelConfig(name="openai/gpt-4o", cost=0.1, input_price_per_million="2.5")
    assert cfg.cost == Decimal("0.1") and cfg.input_price_per_million == Decimal("2.5")
    assert cfg.has_price_override
    assert not ModelConfig(name="openai/gpt-4o").has_price_override


def test_max_output_tokens_must_be_positive() -> None:
    with pytest.raises(ConfigurationError, match="max_output_tokens"):
        ModelConfig(name="openai/gpt-4o", max_output_tokens=0)


def test_domains_accept_one_string_or_many() -> None:
    assert ModelConfig(name="openai/gpt-4o", domains="code").domains == ("code",)
    assert ModelConfig(name="openai/gpt-4o", domains=["code", "math"]).domains == ("code", "math")


def test_api_key_never_shows_in_repr_str_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    key = "sk-live-very-secret-0123456789"
    cfg = ModelConfig(name="openai/gpt-4o", api_key=key)
    assert isinstance(cfg.api_key, Secret) and cfg.api_key.get() == key
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("config %s %r %r", cfg, cfg, cfg.api_key)
    for text in (repr(cfg), str(cfg), repr(cfg.api_key), str(cfg.api_key), f"{cfg.api_key}", caplog.text):
        assert key not in text
    assert "****" in repr(cfg.api_key)


def test_secrets_compare_by_value_so_provider_caches_can_key_on_them() -> None:
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b")
    assert hash(Secret("a")) == hash(Secret("a"))
    assert pickle.loads(pickle.dumps(ModelConfig(name="openai/gpt-4o"))).id == "openai/gpt-4o"


def test_provider_facts_name_key_and_base_url_variables() -> None:
    assert provider_facts("openai").key_env == "OPENAI_API_KEY"
    assert provider_facts("anthropic").base_url_env == "ANTHROPIC_BASE_URL"
    assert provider_facts("groq").key_env == "GROQ_API_KEY"
    assert provider_facts("huggingface").key_env == "HF_TOKEN"
    local = provider_facts("local")
    assert local.self_hosted and not local.key_required and local.logprobs
    with pytest.raises(UnknownProviderError):
        provider_facts("nope")


def test_with_returns_a_changed_copy() -> None:
    cfg = ModelConfig(name="openai/gpt-4o")
    cheaper = cfg.with_(cost=0.001)
    assert cfg.cost is None and cheaper.cost == Decimal("0.001")
