"""`budget_config=` on CascadeAgent (the documented shape) and the shared call-options merge."""

from __future__ import annotations

import pytest

from cascadeflow import BudgetExceeded, CascadeAgent, ModelConfig, QualityConfig
from cascadeflow.budget import BudgetConfig, charges_for, open_ledger
from cascadeflow.runtime.budgets import budget_call_options, call_options
from cascadeflow.runtime.pipeline import CALL_OPTIONS, CallOptions, Charge, Runtime
from cascadeflow.testing import ScriptedProvider

ANSWER = "Exhausted Redis pools after a deploy usually mean the new release opens more connections per worker."
DRAFTER = ModelConfig(name="mini", provider="openai", input_price_per_million=1, output_price_per_million=2)
VERIFIER = ModelConfig(name="big", provider="openai", input_price_per_million=10, output_price_per_million=40)


def test_budget_config_on_cascade_agent_switches_to_cheap_only_then_stops() -> None:
    fired = []
    budget_config = BudgetConfig(daily_limit=0.02, on_limit_exceeded=lambda: fired.append("cheap-only"),
                                 grace_period=0.5, at_limit="cheapest_tier")
    provider = ScriptedProvider({"mini": ["I can't help with that."] * 5000, "big": [ANSWER] * 5000})
    agent = CascadeAgent(models=[DRAFTER, VERIFIER], quality_config=QualityConfig(threshold=0.7),
                         budget_config=budget_config,
                         runtime=Runtime(resolve_provider=provider.resolver(), ledger=open_ledger("memory://")))
    tiers = []
    with pytest.raises(BudgetExceeded):
        for _ in range(5000):
            tiers.append(len(agent.run_sync("why is the redis pool exhausted after a deploy?", max_tokens=20).tiers))
    assert tiers[0] == 2 and tiers[-1] == 1
    assert fired == ["cheap-only"]
    spent = agent.runtime.ledger.state(charges_for(budget_config)[0].key).spent
    assert spent <= budget_config.hard_limit(20_000)


def test_budget_options_need_a_ledger() -> None:
    from cascadeflow import ConfigurationError

    with pytest.raises(ConfigurationError, match="ledger"):
        budget_call_options(BudgetConfig(daily_limit=1.0), None)


def test_call_options_merge_with_enclosing_ones_and_restore() -> None:
    outer = CallOptions(charges=(Charge("session:a", 10),), budget_limit_micro=500)
    with call_options(outer):
        with call_options(CallOptions(charges=(Charge("global:day:x", 20),), raise_bar=-0.15, reason="near"),
                          extra_charges=(Charge("session:b", 30),)) as merged:
            assert [c.key for c in merged.charges] == ["global:day:x", "session:b", "session:a"]
            assert merged.budget_limit_micro == 500 and merged.raise_bar == -0.15 and merged.reason == "near"
        assert CALL_OPTIONS.get().charges == outer.charges
    assert CALL_OPTIONS.get() is None
