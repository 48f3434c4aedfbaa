"""An alert storm: 1,000 concurrent cascade calls through the real HTTP stack against the loopback host, with
the default transport, admission gates and retry budgets (bounded in time, no timing threshold)."""

from __future__ import annotations

import asyncio

import pytest
from loopback import Reply

from cascadeflow.cascade.agent import CascadeAgent
from cascadeflow.cascade.quality import QualityConfig
from cascadeflow.models import ModelConfig
from cascadeflow.providers.base import clear_provider_cache
from cascadeflow.runtime.pipeline import Runtime

STORM = 1_000
ANSWER = "Disk full on db-1: rotate the logs, then restart the writer."


@pytest.mark.timeout(240)
async def test_a_storm_of_a_thousand_concurrent_calls_completes_without_an_error(openai_server):
    clear_provider_cache()  # adapters built for this host by the default registry, with the default transport
    openai_server.default = Reply(text=ANSWER, usage={"input": 40, "output": 12}, delay=0.02)
    tiers = [ModelConfig("gpt-4o-mini", provider="openai", base_url=openai_server.base_url, api_key="sk-storm"),
             ModelConfig("gpt-4o", provider="openai", base_url=openai_server.base_url, api_key="sk-storm")]
    agent = CascadeAgent(models=tiers, quality_config=QualityConfig(threshold=0.0), runtime=Runtime())
    severities = ["P0", "P1", "P2", "P3"]
    results = await asyncio.gather(
        *(agent.run(f"alert {i}: disk usage 97% on db-1", max_tokens=64,
                    metadata={"severity": severities[i % 4]}) for i in range(STORM)),
        return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == []
    assert all(r.content == ANSWER and r.draft_accepted for r in results)
    assert len(openai_server.requests) == STORM
    clear_provider_cache()
