"""The rollout guide: observe on real traffic, validate policies in observe mode, enforce one constraint, tighten
and expand, per-agent policies, and the mode from the environment. `agent` is a CascadeAgent over two Groq
models; `llm` (left undefined by the guide) is a team's thin client over the official `openai` SDK pointed
at Groq, so the per-agent policies govern instrumented SDK calls.

Features covered (all working):
- `cascadeflow.init(mode="observe"|"enforce")`, `cascadeflow.init(mode=os.getenv("CASCADEFLOW_MODE", ...))`
- `with cascadeflow.run() as session:` around `await agent.run(query)`; `session.summary()` keys cost_total,
  steps, latency_total_ms; `session.trace()` records indexed like dicts (step, action, reason)
- run budgets, `max_tool_calls`, `compliance="gdpr"` (prompts redacted), `kpi_weights` (and the trace saying
  when the weights have nothing to choose between)
- `@cascadeflow.agent(budget=, compliance=, kpi_weights=)` on async functions
- the vendor of an SDK client from its base URL: a Groq call through the openai SDK is priced as Groq, and
  `compliance="hipaa"` refuses it (Groq is not on the preset's list) instead of passing it as OpenAI
- the default audit log written in observe mode without an audit setting
"""

from __future__ import annotations

import os

import openai
import pytest
from loopback import Reply

import cascadeflow
from cascadeflow import CascadeAgent, ModelConfig, PolicyViolation

query = "Summarise the incident: API latency spiked after the 14:00 deploy."


@pytest.fixture(autouse=True)
def groq_only(monkeypatch, openai_server):
    # the loopback host is Groq here: no other OpenAI-wire provider claims its URL
    for name in ("OPENAI", "VLLM", "OLLAMA", "TOGETHER", "DEEPSEEK", "OPENROUTER"):
        monkeypatch.delenv(f"{name}_BASE_URL")
    openai_server.default = Reply(text="Latency rose with the 14:00 deploy; rolling it back restored p99.",
                                  usage={"input": 40, "output": 14})


@pytest.fixture
def agent():
    return CascadeAgent(models=[ModelConfig("llama-3.1-8b-instant", provider="groq"),
                                ModelConfig("llama-3.3-70b-versatile", provider="groq")])


class GroqLlm:
    """The guide's `llm`: a thin client over the openai SDK, pointed at Groq as its users configure it."""

    def __init__(self) -> None:
        self.client = openai.AsyncOpenAI(base_url=os.environ["GROQ_BASE_URL"], api_key=os.environ["GROQ_API_KEY"],
                                         max_retries=0)

    async def complete(self, query: str) -> str:
        answer = await self.client.chat.completions.create(
            model="llama-3.1-8b-instant", messages=[{"role": "user", "content": query}], max_tokens=200)
        return answer.choices[0].message.content


metrics: dict[str, float] = {}


def log_metric(name, value):
    metrics[name] = value


async def test_stage_1_observe_on_real_traffic(agent, openai_server, audit_log):
    cascadeflow.init(mode="observe")
    # Deploy. Let it run for 24-48 hours on real traffic.
    with cascadeflow.run() as session:
        await agent.run(query)
        summary = session.summary()

        # Log these to your monitoring system
        log_metric("cascadeflow.cost", summary['cost_total'])
        log_metric("cascadeflow.steps", summary['steps'])
        log_metric("cascadeflow.latency", summary['latency_total_ms'])
    assert metrics["cascadeflow.cost"] > 0 and metrics["cascadeflow.steps"] == len(openai_server.requests) >= 1
    assert metrics["cascadeflow.latency"] > 0
    assert [r["model_selected"] for r in audit_log()] == [f"groq/{openai_server.requests[-1].json['model']}"]


async def test_stage_2_validate_policies_in_observe_mode(agent, openai_server, capsys):
    cascadeflow.init(mode="observe")

    with cascadeflow.run(budget=0.50, compliance="gdpr") as session:
        await agent.run(query + " Reach the on-call at oncall@example.com.")

        # Check what would have happened under enforcement
        violations = [r for r in session.trace() if r['action'] in ('stop', 'switch_model', 'deny_tool')]
        print(f"Would-be enforcement actions: {len(violations)}")
        for v in violations:
            print(f"  Step {v['step']}: {v['action']} — {v['reason']}")
    assert f"Would-be enforcement actions: {len(violations)}" in capsys.readouterr().out
    redactions = [r for r in session.trace() if r["action"] == "redact"]
    assert redactions and not any(r["applied"] for r in redactions)  # observe: recorded, not done
    assert "oncall@example.com" in openai_server.requests[0].body.decode()


async def test_stage_3_enforce_one_constraint(agent, openai_server):
    cascadeflow.init(mode="enforce")

    # Start with budget only — generous cap
    with cascadeflow.run(budget=5.00) as session:
        await agent.run(query)
    assert 0 < session.summary()["cost_total"] and session.summary()["budget_remaining"] < 5.00


async def test_stage_4_tighten_and_expand(agent, openai_server):
    cascadeflow.init(mode="enforce")
    # Week 2: Tighter budget + tool call cap
    with cascadeflow.run(budget=1.00, max_tool_calls=10) as session:
        await agent.run(query)

    # Week 3: Add compliance
    with cascadeflow.run(budget=1.00, max_tool_calls=10, compliance="gdpr") as session:
        await agent.run(query + " Patient contact: ana@example.com")
    assert "ana@example.com" not in openai_server.requests[-1].body.decode()

    # Week 4: Add KPI optimization
    with cascadeflow.run(
        budget=1.00,
        max_tool_calls=10,
        compliance="gdpr",
        kpi_weights={"quality": 0.6, "cost": 0.3, "latency": 0.1},
    ) as session:
        await agent.run(query)
    kpi = [r for r in session.trace() if r["details"].get("policy") == "kpi"]
    assert kpi and "nothing to choose between" in kpi[0]["reason"]


async def test_stage_5_per_agent_policies(openai_server):
    cascadeflow.init(mode="enforce")
    llm = GroqLlm()

    @cascadeflow.agent(budget=0.10, kpi_weights={"cost": 0.9, "quality": 0.1})
    async def triage_agent(query):
        return await llm.complete(query)

    @cascadeflow.agent(budget=2.00, compliance="hipaa", kpi_weights={"quality": 0.9, "cost": 0.1})
    async def medical_agent(query):
        return await llm.complete(query)

    assert await triage_agent(query) == openai_server.default.text
    with pytest.raises(PolicyViolation, match="groq"):
        await medical_agent("Patient reports chest pain after the new dosage; next step?")
    assert len(openai_server.requests) == 1  # the refused call was never sent


async def test_an_sdk_call_to_groq_is_recorded_as_groq_in_observe_mode(openai_server, audit_log):
    cascadeflow.init(mode="observe")
    await GroqLlm().complete(query)
    [record] = audit_log()
    assert record["model_selected"] == "groq/llama-3.1-8b-instant" and record["cost_usd"] > 0
    assert "unpriced" not in record


def test_environment_driven_mode(monkeypatch):
    monkeypatch.setenv("CASCADEFLOW_MODE", "enforce")
    cascadeflow.init(mode=os.getenv("CASCADEFLOW_MODE", "observe"))
    assert cascadeflow.harness.current_config().mode == "enforce"
    monkeypatch.delenv("CASCADEFLOW_MODE")
    cascadeflow.init(mode=os.getenv("CASCADEFLOW_MODE", "observe"))
    assert cascadeflow.harness.current_config().mode == "observe"
