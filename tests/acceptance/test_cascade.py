"""The cascade: two Groq models declared with a per-token price, a verbose agent, and severity routing that
sends P1 incidents to the large model and the rest to the small one, printing one line per decision.

Features covered (all working):
- `ModelConfig(name=, provider="groq", cost_per_token=)` pricing a call by its tokens
- `CascadeAgent(models=, verbose=True)`
- `agent.run(query, model=route_model(severity))` forcing the routed model (no cascade, no other call)
- the verbose lines: the routing choice, then `Tokens: N | Cost: $X | Latency: Ys` for the call
- the cost difference between the two routes, from the declared prices
"""

from __future__ import annotations

import re

import pytest
from loopback import Reply

from cascadeflow import CascadeAgent, ModelConfig

INCIDENTS = {"P1": "payment API returns 502 for 30% of checkouts since 09:12",
             "P3": "search results stale for the 'docs' index"}


def build_cascade() -> CascadeAgent:
    models = [
        ModelConfig(name="llama-3.1-8b-instant", provider="groq", cost_per_token=0.0000001),
        ModelConfig(name="llama-3.3-70b-versatile", provider="groq", cost_per_token=0.0000008),
    ]
    cascade = CascadeAgent(models=models, verbose=True)
    return cascade


def route_model(severity):
    if severity == "P1":
        model = "llama-3.3-70b-versatile"
        reason = "P1 incident — routing to powerful model"
    else:
        model = "llama-3.1-8b-instant"
        reason = "Low severity — routing to fast cheap model"
    print(f"[CASCADEFLOW] {reason} → {model}")
    return model


@pytest.fixture
def groq(openai_server):
    openai_server.default = Reply(text="Roll back the 09:10 payment-gateway deploy; 502s began with it.",
                                  usage={"input": 300, "output": 39})
    return openai_server


async def test_severity_routing_forces_the_chosen_model_and_prices_it_per_token(groq, capsys):
    cascade = build_cascade()
    p1 = await cascade.run(INCIDENTS["P1"], model=route_model("P1"))
    p3 = await cascade.run(INCIDENTS["P3"], model=route_model("P3"))
    assert [r.json["model"] for r in groq.requests] == ["llama-3.3-70b-versatile", "llama-3.1-8b-instant"]
    assert p1.model_used == "groq/llama-3.3-70b-versatile" and len(p1.tiers) == 1
    assert p3.model_used == "groq/llama-3.1-8b-instant" and len(p3.tiers) == 1
    assert p1.total_cost == pytest.approx(339 * 0.0000008) and p3.total_cost == pytest.approx(339 * 0.0000001)
    assert p1.total_cost / p3.total_cost == pytest.approx(8)


async def test_every_decision_prints_one_line_with_tokens_cost_and_latency(groq, capsys):
    cascade = build_cascade()
    await cascade.run(INCIDENTS["P1"], model=route_model("P1"))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[CASCADEFLOW]")]
    assert lines[0] == "[CASCADEFLOW] P1 incident — routing to powerful model → llama-3.3-70b-versatile"
    stats = [line for line in lines if "Tokens:" in line]
    assert stats and re.search(r"Tokens: 339 \| Cost: \$0\.000271 \| Latency: \d+\.\d\ds", stats[-1])
