"""The observe-then-enforce rollout's snippets, run as written against the loopback server, with a CascadeAgent
as `agent`. `cascadeflow.init/run/agent` are the harness's (re-exported from `cascadeflow` by the package)."""

from __future__ import annotations

import os

import pytest
from loopback import Reply

from cascadeflow import harness as cascadeflow  # the names users call: init, run, agent
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


@pytest.fixture
def agent(models):
    return CascadeAgent(models=models, runtime=cascadeflow.default_runtime())


def log_metric(name, value):
    assert value is not None, name


async def test_stage_1_observe_on_real_traffic(models, openai_server):
    cascadeflow.init(mode="observe", audit=False)
    agent = CascadeAgent(models=models, runtime=cascadeflow.default_runtime())
    with cascadeflow.run() as session:
        await agent.run(query)
        summary = session.summary()

        log_metric("cascadeflow.cost", summary['cost_total'])
        log_metric("cascadeflow.steps", summary['steps'])
        log_metric("cascadeflow.latency", summary['latency_total_ms'])
    assert summary["cost_total"] > 0 and summary["steps"] == len(openai_server.requests) >= 1
    assert set(summary["models_used"]) <= {"openai/gpt-4o-mini", "openai/gpt-4o"}


async def test_stage_2_validate_policies_in_observe_mode(models, openai_server, capsys):
    cascadeflow.init(mode="observe", audit=False)
    agent = CascadeAgent(models=models, runtime=cascadeflow.default_runtime())
    with cascadeflow.run(budget=0.0001, compliance="gdpr") as session:  # tightened so something would trip
        await agent.run(query + " Contact: oncall@example.com")

        violations = [r for r in session.trace() if r['action'] in ('stop', 'switch_model', 'deny_tool')]
        print(f"Would-be enforcement actions: {len(violations)}")
        for v in violations:
            print(f"  Step {v['step']}: {v['action']} — {v['reason']}")
    out = capsys.readouterr().out
    assert len(violations) >= 1 and all(not v["applied"] for v in violations)
    assert "does not fit the run budget" in out
    assert openai_server.requests and "oncall@example.com" in openai_server.requests[0].body.decode()


async def test_stage_3_enforce_one_constraint(agent, openai_server):
    cascadeflow.init(mode="enforce", audit=False)
    agent = CascadeAgent(models=agent.models, runtime=cascadeflow.default_runtime())
    with cascadeflow.run(budget=5.00) as session:
        result = await agent.run(query)
    assert result.content and session.summary()["budget_remaining"] < 5.00


async def test_stage_4_tighten_and_expand(models, openai_server):
    cascadeflow.init(mode="enforce", audit=False)
    agent = CascadeAgent(models=models, runtime=cascadeflow.default_runtime())
    with cascadeflow.run(budget=1.00, max_tool_calls=10) as session:
        await agent.run(query)
    with cascadeflow.run(budget=1.00, max_tool_calls=10, compliance="gdpr") as session:
        await agent.run(query)
    with cascadeflow.run(
        budget=1.00,
        max_tool_calls=10,
        compliance="gdpr",
        kpi_weights={"quality": 0.6, "cost": 0.3, "latency": 0.1},
    ) as session:
        await agent.run(query)
    assert session.summary()["kpi_weights"] == {"quality": 0.6, "cost": 0.3, "latency": 0.1}
    assert session.summary()["steps"] >= 1


async def test_stage_5_per_agent_policies(models, openai_server):
    cascadeflow.init(mode="enforce", audit=False)
    llm = CascadeAgent(models=models, runtime=cascadeflow.default_runtime())
    llm.complete = llm.run  # the guide's `llm.complete(query)`
    seen = {}

    @cascadeflow.agent(budget=0.10, kpi_weights={"cost": 0.9, "quality": 0.1})
    async def triage_agent(query):
        seen["triage"] = cascadeflow.current_run()
        return await llm.complete(query)

    @cascadeflow.agent(budget=2.00, compliance="hipaa", kpi_weights={"quality": 0.9, "cost": 0.1})
    async def medical_agent(query):
        seen["medical"] = cascadeflow.current_run()
        return await llm.complete(query)

    await triage_agent(query)
    await medical_agent("Patient SSN 078-05-1120 reports chest pain; triage?")
    assert seen["triage"].summary()["budget_max"] == 0.10 and seen["medical"].compliance.name == "hipaa"
    assert "078-05-1120" not in openai_server.requests[-1].body.decode()
    assert next(r.action for r in seen["medical"].trace()) == "redact"


def test_environment_driven_mode(monkeypatch):
    monkeypatch.setenv("CASCADEFLOW_MODE", "enforce")
    cascadeflow.init(mode=os.getenv("CASCADEFLOW_MODE", "observe"), audit=False)
    assert cascadeflow.current_config().mode == "enforce"


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
    from cascadeflow.runtime.client import CascadeFlow

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
