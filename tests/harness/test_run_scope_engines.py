"""Engines inside run scopes, against the loopback server: a CascadeAgent (with its own runtime or the
harness's) and a CascadeFlow are governed by the scope's budget and compliance. The rollout guide's own
steps are tests/acceptance/test_rollout_guide.py."""

from __future__ import annotations

import pytest
from loopback import Reply

from cascadeflow import harness as cascadeflow  # init, run, default_runtime, as user code calls them
from cascadeflow.cascade.agent import CascadeAgent
from cascadeflow.errors import BudgetExceeded, PolicyViolation
from cascadeflow.models import ModelConfig

query = "Summarise the incident: API latency spiked after the 14:00 deploy."


@pytest.fixture
def models(openai_server):
    openai_server.default = Reply(text="Latency rose after the deploy; rolling back fixed it.",
                                  usage={"input": 40, "output": 12})
    return [ModelConfig("gpt-4o-mini", provider="openai", base_url=openai_server.base_url, api_key="sk-test"),
            ModelConfig("gpt-4o", provider="openai", base_url=openai_server.base_url, api_key="sk-test")]


@pytest.mark.parametrize("own_runtime", [True, False])
@pytest.mark.parametrize("compliance, error", [(None, BudgetExceeded), ("strict", PolicyViolation)])
async def test_cascade_agent_inside_a_zero_budget_enforce_run_is_stopped_before_any_provider(
        models, openai_server, own_runtime, compliance, error):
    cascadeflow.init(mode="enforce", audit=False)
    # the agent's own default runtime has no ledger: the run scope's policy still stops it
    agent = CascadeAgent(models=models) if own_runtime else CascadeAgent(models=models,
                                                                          runtime=cascadeflow.default_runtime())
    with cascadeflow.run(budget=0, compliance=compliance) as session, pytest.raises(error):
        await agent.run(query)
    assert openai_server.requests == []
    stops = [r for r in session.trace() if r["action"] == "stop"]
    assert len(stops) == 1 and stops[0]["applied"] is True and stops[0]["run_id"] == session.run_id


async def test_cascadeflow_client_calls_are_governed_by_the_run_scope(models, openai_server):
    from cascadeflow.flow.client import CascadeFlow

    cascadeflow.init(mode="enforce", audit=False)
    client = CascadeFlow(audit=False)
    with cascadeflow.run(budget=1.0, compliance="gdpr") as session:
        result = await client.acomplete(models[0], "Reach me at ana@example.com")
    assert result.text
    assert "ana@example.com" not in openai_server.requests[0].body.decode()
    assert session.summary()["steps"] == 1 and session.summary()["actions"]["redact"] == 1
    with cascadeflow.run(budget=0) as stopped, pytest.raises(BudgetExceeded):
        await client.acomplete(models[0], "hello")
    assert len(openai_server.requests) == 1 and stopped.trace()[0]["action"] == "stop"
