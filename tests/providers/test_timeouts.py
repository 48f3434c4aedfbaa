"""Timeouts: validated where they are written, and honoured by the adapter that serves the model."""

from __future__ import annotations

import pytest
from loopback import Reply

from cascadeflow.errors import ConfigurationError, InvalidRequestError, ProviderTimeoutError
from cascadeflow.messages import build_request
from cascadeflow.models import ModelConfig
from cascadeflow.providers.base import clear_provider_cache, provider_for
from cascadeflow.providers.http import Timeouts

BAD = [float("nan"), float("inf"), 1e-9, -1, 0, "x", True, None]


@pytest.mark.parametrize("bad", [b for b in BAD if b is not None])
def test_invalid_model_timeouts_are_refused_at_construction(bad):
    with pytest.raises(ConfigurationError, match=r"ModelConfig\.timeout"):
        ModelConfig(name="gpt-4o-mini", timeout=bad)


@pytest.mark.parametrize("field", ["connect", "read", "total"])
@pytest.mark.parametrize("bad", BAD)
def test_invalid_transport_timeouts_are_refused_at_construction(field, bad):
    with pytest.raises(ConfigurationError, match=f"Timeouts.{field}"):
        Timeouts(**{field: bad})


@pytest.mark.parametrize("bad", [b for b in BAD if b is not None])
def test_invalid_call_timeouts_are_refused_before_sending(bad):
    with pytest.raises(InvalidRequestError, match="timeout"):
        build_request("hi", timeout=bad)


def test_valid_timeouts_are_kept_as_seconds():
    assert ModelConfig(name="gpt-4o-mini", timeout=2).timeout == 2.0
    assert build_request("hi", timeout=0.5).timeout == 0.5


async def test_a_model_timeout_is_honoured_even_after_an_adapter_without_it_was_built(openai_server):
    clear_provider_cache()
    base = {"name": "gpt-4o-mini", "provider": "openai", "base_url": openai_server.base_url, "api_key": "sk-t"}
    patient = provider_for(ModelConfig(**base))
    hasty = provider_for(ModelConfig(**base, timeout=0.3))
    assert hasty is not patient
    openai_server.default = Reply(text="late", delay=3)
    with pytest.raises(ProviderTimeoutError):
        await hasty.complete(build_request("hi", model="gpt-4o-mini"))
    clear_provider_cache()
