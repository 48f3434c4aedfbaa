"""CascadeFlow.complete / BudgetSession: the documented API shapes, per-call caps, budgets and audit records."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cascadeflow import BudgetExceeded, ConfigurationError, InvalidRequestError, ModelConfig
from cascadeflow.budget import BudgetConfig, DeferredQueue, UserBudget, charges_for, open_ledger
from cascadeflow.flow.client import CascadeFlow
from cascadeflow.flow.session import BudgetSession
from cascadeflow.routing import SeverityRouter
from cascadeflow.runtime.pipeline import Runtime
from cascadeflow.testing import ScriptedProvider, capture_audit

ANSWER = "The Redis connection pool is exhausted because the deploy doubled the worker count."
CHEAP = ModelConfig(name="cheap", provider="openai", input_price_per_million=1, output_price_per_million=2)
STRONG = ModelConfig(name="strong", provider="openai", input_price_per_million=10, output_price_per_million=40)


def make_cf(replies=None, **kw):
    provider = ScriptedProvider(replies or (), default=ANSWER)
    runtime = Runtime(resolve_provider=provider.resolver(), ledger=open_ledger("memory://"),
                      overflow=kw.pop("overflow", "shrink"))
    sink = capture_audit(runtime)
    return CascadeFlow(runtime=runtime, **kw), provider, sink


def test_complete_returns_content_cost_usage_model_latency() -> None:
    cf, _provider, sink = make_cf()
    r = cf.complete(model=CHEAP, messages=[{"role": "user", "content": "why is redis pool exhausted?"}],
                    budget_limit=0.05, max_tokens=200, metadata={"alert_id": "INC-042"})
    assert r.content == ANSWER
    assert r.model == "openai/cheap"
    assert r.cost_decimal == Decimal(r.usage.input_tokens * 1 + r.usage.output_tokens * 2) / Decimal(1_000_000)
    assert r.cost_usd == r.cost == float(r.cost_decimal) and r.latency_ms >= 0
    record = sink.records[-1].to_dict()
    assert record["alert_id"] == "INC-042" and record["model_selected"] == "openai/cheap"
    assert record["routing_reason"] == "model chosen by the caller" and record["cost_usd"] == r.cost_usd


def test_per_call_cap_lowers_max_tokens_to_fit_and_records_it() -> None:
    cf, provider, _sink = make_cf()
    # 1000 max tokens at $40/M = $0.04 worst case; a $0.01 cap leaves room for ~245 output tokens.
    r = cf.complete(model=STRONG, messages="summarise the incident", budget_limit=0.01, max_tokens=1000)
    sent = provider.requests[-1]
    assert sent.max_tokens < 1000
    assert r.tiers[0]["shrunk_from"] == 1000
    worst = cf.runtime.price_book.worst_case(STRONG, 10_000, 0)  # sanity: prices are per token
    assert worst > 0


def test_per_call_cap_refuses_before_sending_when_configured_to_raise() -> None:
    cf, provider, sink = make_cf(overflow="raise")
    with pytest.raises(BudgetExceeded):
        cf.complete(model=STRONG, messages="summarise the incident", budget_limit=0.01, max_tokens=1000)
    assert provider.requests == []
    assert sink.records[-1].action == "stop"


def test_per_call_cap_refuses_when_not_even_the_useful_minimum_fits() -> None:
    cf, provider, _ = make_cf()
    with pytest.raises(BudgetExceeded):
        cf.complete(model=STRONG, messages="x" * 4000, budget_limit=0.00001, max_tokens=1000)
    assert provider.requests == []


def test_bad_input_is_rejected_before_any_request() -> None:
    cf, provider, _ = make_cf()
    with pytest.raises(InvalidRequestError):
        cf.complete(model=CHEAP, messages=[{"role": "robot", "content": "hi"}])
    with pytest.raises(InvalidRequestError):
        cf.complete(model=CHEAP, messages="hi", max_tokens=-5)
    with pytest.raises(ConfigurationError):
        cf.complete(model=CHEAP, messages="hi", budget_limit=-1)
    with pytest.raises(ConfigurationError):
        cf.complete(model=CHEAP, messages="hi", budget_limit="lots")
    with pytest.raises(ConfigurationError):
        cf.complete(messages="hi")  # no model, no router
    assert provider.requests == []


def test_alert_loop_catches_budget_exceeded_and_queues_the_rest(tmp_path) -> None:
    cf, provider, _ = make_cf()
    queue = DeferredQueue(tmp_path / "queue.sqlite")
    alerts = [{"id": f"INC-{i:03d}", "severity": "P2"} for i in range(40)]
    answered, queued = [], []
    with BudgetSession(cf, limit=0.002) as session:
        for alert in alerts:
            try:
                session.complete(model=CHEAP, messages=[{"role": "user", "content": f"triage {alert['id']}"}],
                                 max_tokens=200)
                answered.append(alert["id"])
            except BudgetExceeded:
                queue.enqueue(alert, reason="budget")
                queued.append(alert["id"])
        assert session.spent <= 0.002
        assert session.summary()["calls"] == len(answered)
    assert answered and queued and len(answered) + len(queued) == 40
    assert [item.payload["id"] for item in queue.list()] == queued
    # every refused call was refused before it was sent
    assert len(provider.requests) == len(answered)


def test_session_charges_every_cascade_tier() -> None:
    cf, _provider, _ = make_cf(replies={"cheap": ["I can't help with that."], "strong": [ANSWER]})
    with BudgetSession(cf, limit=1.0) as session:
        r = session.complete(model=[CHEAP, STRONG], messages="why is the redis pool exhausted after deploy?",
                             max_tokens=100)
        assert r.draft_accepted is False and r.model == "openai/strong"
        assert len(r.tiers) == 2
        assert Decimal(str(session.spent)) == r.cost_decimal


def test_router_picks_model_and_reason_goes_to_audit() -> None:
    cf, _provider, sink = make_cf(router=SeverityRouter({"P0": STRONG, "P3": CHEAP}, default=CHEAP))
    r = cf.complete(messages="disk at 61%", metadata={"severity": "P0"}, max_tokens=50)
    assert r.model == "openai/strong" and "P0" in r.routing_reason
    assert sink.records[-1].routing_reason == r.routing_reason


def test_user_budget_stops_the_user_not_others() -> None:
    config = BudgetConfig(user_budgets={"alice": UserBudget(daily=0.0005)})
    cf, _provider, _ = make_cf(budget_config=config)
    with pytest.raises(BudgetExceeded) as info:
        for _ in range(50):
            cf.complete(model=CHEAP, messages="hello there", max_tokens=100, user_id="alice")
    assert "user:alice:day:" in info.value.key
    cf.complete(model=CHEAP, messages="hello there", max_tokens=100, user_id="bob")


def test_budget_pressure_degrades_then_serves_cheapest_tier_then_stops() -> None:
    fired = []
    config = BudgetConfig(daily_limit=0.02, grace_period=0.5, degrade_at=0.5, at_limit="cheapest_tier",
                          on_limit_exceeded=lambda: fired.append(1))
    refusal = "I can't help with that."
    cf, _provider, _sink = make_cf(replies={"cheap": [refusal] * 3000, "strong": [ANSWER] * 3000},
                                 budget_config=config)
    tiers_per_call = []
    with pytest.raises(BudgetExceeded):
        for _ in range(2000):
            r = cf.complete(model=[CHEAP, STRONG], messages="why is the redis pool exhausted after deploy?",
                            max_tokens=20)
            tiers_per_call.append(len(r.tiers))
    assert tiers_per_call[0] == 2  # normal: the refusal escalates
    assert tiers_per_call[-1] == 1  # past the nominal limit: cheapest tier only
    assert fired == [1]  # once per window
    key = charges_for(config)[0].key
    assert cf.runtime.ledger.state(key).spent <= config.hard_limit(20_000)


def test_default_cascadeflow_writes_an_audit_record_per_call(tmp_path, monkeypatch) -> None:
    from cascadeflow import harness
    from cascadeflow.providers.base import register_provider
    from cascadeflow.trace import iter_records

    monkeypatch.setenv("CASCADEFLOW_AUDIT_PATH", str(tmp_path / "audit.jsonl"))
    harness.reset()  # the default runtime opens the default log when it is first built
    provider = ScriptedProvider(default=ANSWER)
    register_provider("openai", lambda cfg: provider)
    try:
        cf = CascadeFlow()
        cf.complete(model=CHEAP, messages="why is redis slow?", max_tokens=50, metadata={"alert_id": "INC-7"})
    finally:
        register_provider("openai", None)
        harness.reset()
    records = list(iter_records(tmp_path / "audit.jsonl"))
    assert [r["alert_id"] for r in records] == ["INC-7"]
    assert records[0]["model_selected"] == "openai/cheap" and "prompt" not in records[0]


def test_a_paid_answer_is_kept_when_the_ledger_fails_at_settlement(caplog) -> None:
    from cascadeflow import BudgetBackendUnavailable

    cf, _provider, _sink = make_cf()
    ledger = cf.runtime.ledger

    def broken_settle(*args, **kwargs):
        raise BudgetBackendUnavailable("store went away")

    ledger.settle = broken_settle
    with BudgetSession(cf, limit=1.0) as session:
        r = session.complete(model=CHEAP, messages="why is redis slow?", max_tokens=50)
        assert r.content == ANSWER
        assert session.remaining < 1.0  # the worst case stays reserved until its lease passes
    assert "unreachable while settling" in caplog.text


def test_verbose_prints_the_choice_and_the_numbers_of_a_single_model_call(capsys) -> None:
    cf, _provider, _sink = make_cf(verbose=True)
    r = cf.complete(model=CHEAP, messages="why is redis slow?", max_tokens=50, routing_reason="P3 — cheap model")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "[CASCADEFLOW] P3 — cheap model → cheap"
    assert lines[1].startswith(f"[CASCADEFLOW] completed → cheap | Tokens: {r.usage.total_tokens} | "
                               f"Cost: ${r.cost:.6f} | Latency: ")


def test_on_limit_exceeded_fires_when_the_first_call_is_refused() -> None:
    fired = []
    config = BudgetConfig(daily_limit=0.000001, on_limit_exceeded=lambda: fired.append(1))
    cf, provider, _sink = make_cf(budget_config=config)
    for _ in range(3):
        with pytest.raises(BudgetExceeded):
            cf.complete(model=CHEAP, messages="why is redis slow?", max_tokens=50)
    assert provider.requests == [] and fired == [1]


def test_complete_refuses_an_unknown_option_before_sending() -> None:
    cf, provider, _sink = make_cf()
    with pytest.raises(InvalidRequestError, match="unknown option temprature"):
        cf.complete(model=CHEAP, messages="why is redis slow?", temprature=0.2)
    assert provider.requests == []
