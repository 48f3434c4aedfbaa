"""The investigation loop with scripted models: routing by task type, validation and escalation, the
budget, the loop limit, and the event stream a live consumer reads."""

from __future__ import annotations

import asyncio

import pytest

from cascadeflow import CascadeFlow, ModelConfig, Runtime, open_ledger
from cascadeflow.testing import ScriptedProvider, capture_audit
from cascadeflow_incidents import events as ev
from cascadeflow_incidents.intake import load_scenario
from cascadeflow_incidents.investigation import InvestigationConfig, Investigator
from cascadeflow_incidents.llm import cloud_plan
from cascadeflow_incidents.runbooks import RunbookIndex
from cascadeflow_incidents.tools import recorded_toolbox

from .samples import SCENARIOS

CHEAP = ModelConfig(name="cheap", provider="openai", input_price_per_million=1, output_price_per_million=2)
STRONG = ModelConfig(name="strong", provider="openai", input_price_per_million=10, output_price_per_million=40)
GOOD = "ROOT_CAUSE: pod checkout-web-7c1e2-zzzzz crashes on a KeyError in its code\nCATEGORY: code_defect"
WRONG = "ROOT_CAUSE: the network is slow\nCATEGORY: infrastructure"


def _setup(replies, *, plan="cascade", default=None, **config):
    provider = ScriptedProvider(replies, default=default)
    runtime = Runtime(resolve_provider=provider.resolver(), ledger=open_ledger("memory://"))
    audit = capture_audit(runtime)
    model_plan = cloud_plan(plan, CHEAP, STRONG)
    investigator = Investigator(cf=CascadeFlow(runtime=runtime, router=model_plan.router), plan=model_plan,
                                config=InvestigationConfig(**config))
    scenario = load_scenario(SCENARIOS / "crash-defect")
    toolbox = recorded_toolbox(scenario.evidence, runbooks=RunbookIndex())
    return investigator, scenario, toolbox, provider, audit


def _of(report, cls):
    return [e for e in report.log.events if isinstance(e, cls)]


async def test_a_valid_model_answer_is_adopted_with_the_evidence_backed_claims() -> None:
    investigator, scenario, toolbox, provider, _ = _setup({"cheap": [GOOD]}, plan="cheap")
    report = await investigator.investigate(scenario.alert, toolbox)
    assert report.diagnosis.author == "openai/cheap" and report.diagnosis.category == "code_defect"
    assert "KeyError" in report.diagnosis.root_cause and "[evidence: k8s_pod_logs]" in report.answer
    selection = _of(report, ev.ModelSelection)[0]
    assert (selection.task_type, selection.model, selection.tier) == ("complex_reasoning", "openai/cheap", "cheap")
    assert "root-cause reasoning" in selection.reason
    assert provider.requests[0].metadata["task_type"] == "complex_reasoning"
    assert [c.action for c in _of(report, ev.DiagnosisChecked)] == ["accepted"]


async def test_a_contradicted_answer_escalates_to_the_strong_tier_and_the_analyzers_stand_if_it_fails_too() -> None:
    investigator, scenario, toolbox, _, _ = _setup(
        {}, plan="cascade", default=lambda request: WRONG if request.model == "cheap" else "nonsense")
    report = await investigator.investigate(scenario.alert, toolbox)
    checks = _of(report, ev.DiagnosisChecked)
    assert [c.action for c in checks] == ["escalate", "analyzers stand"]
    assert "matches no active finding" in " ".join(checks[0].problems)
    assert _of(report, ev.ModelSelection)[1].task_type == "root_cause_review"
    assert _of(report, ev.ModelSelection)[1].model == "openai/strong"
    assert report.diagnosis.author == "analyzers" and report.diagnosis.category == "code_defect"


async def test_spend_by_task_and_tier_reconciles_with_the_audit_log() -> None:
    investigator, scenario, toolbox, _, audit = _setup({"cheap": [WRONG], "strong": [GOOD]}, plan="cascade")
    report = await investigator.investigate(scenario.alert, toolbox)
    audited = sum(r.to_dict()["cost_usd"] for r in audit.records)
    assert report.spend.total > 0 and abs(report.spend.total - audited) < 1e-9
    assert abs(report.ledger_spent - report.spend.total) <= 1e-6 * len(audit.records)  # micro-dollar ledger
    cost = _of(report, ev.CostUpdate)[-1]
    assert abs(sum(cost.by_task.values()) - audited) < 1e-9 and sum(cost.calls_by_tier.values()) >= 2


def _at_strong_rates(tokens_in: int, tokens_out: int) -> float:
    return (tokens_in * 10 + tokens_out * 40) / 1e6


async def test_all_premium_prices_each_call_once_at_the_plans_strongest_model_by_default() -> None:
    investigator, scenario, toolbox, _, audit = _setup({"cheap": [GOOD]}, plan="cheap")
    report = await investigator.investigate(scenario.alert, toolbox)
    # the cheap plan's strongest model is the cheap one: all-premium equals what was spent
    assert _of(report, ev.CostUpdate)[-1].all_premium_usd == pytest.approx(report.spend.total)
    investigator, scenario, toolbox, _, audit = _setup({"cheap": [WRONG], "strong": [GOOD]}, plan="cascade")
    report = await investigator.investigate(scenario.alert, toolbox)
    answers = [r.to_dict()["tiers"][-1] for r in audit.records]  # the attempt that answered each call
    cost = _of(report, ev.CostUpdate)[-1]
    assert cost.all_premium_usd == pytest.approx(sum(_at_strong_rates(a["input_tokens"], a["output_tokens"])
                                                     for a in answers))
    assert cost.all_premium_usd > cost.total_usd


async def test_a_cascaded_calls_prompt_counts_once_in_all_premium() -> None:
    # an empty draft fails the cascade's own quality check: the strong tier answers the same call
    investigator, scenario, toolbox, _, audit = _setup({"cheap": [""], "strong": [GOOD]}, plan="cascade")
    report = await investigator.investigate(scenario.alert, toolbox)
    cascaded = [r.to_dict() for r in audit.records if len(r.to_dict()["tiers"]) > 1]
    assert cascaded  # the draft was rejected inside the call and the strong tier answered it
    both = sum(_at_strong_rates(t["input_tokens"], t["output_tokens"]) for r in audit.records
               for t in r.to_dict()["tiers"])
    assert _of(report, ev.CostUpdate)[-1].all_premium_usd < both


async def test_the_runs_premium_model_prices_all_premium_whatever_the_plan() -> None:
    provider = ScriptedProvider({"cheap": [GOOD]})
    runtime = Runtime(resolve_provider=provider.resolver(), ledger=open_ledger("memory://"))
    audit = capture_audit(runtime)
    plan = cloud_plan("cheap", CHEAP, STRONG)
    investigator = Investigator(cf=CascadeFlow(runtime=runtime, router=plan.router), plan=plan, premium=STRONG)
    scenario = load_scenario(SCENARIOS / "crash-defect")
    report = await investigator.investigate(scenario.alert, recorded_toolbox(scenario.evidence,
                                                                             runbooks=RunbookIndex()))
    answers = [r.to_dict()["tiers"][-1] for r in audit.records]
    assert answers and all(a["model"] == CHEAP.id for a in answers)
    expected = sum(_at_strong_rates(a["input_tokens"], a["output_tokens"]) for a in answers)
    all_premium = _of(report, ev.CostUpdate)[-1].all_premium_usd
    assert all_premium == pytest.approx(expected) and all_premium > report.spend.total


async def test_a_budget_too_small_for_any_call_leaves_the_analyzers_answer() -> None:
    investigator, scenario, toolbox, provider, _ = _setup({"cheap": [GOOD]}, plan="cheap", budget_usd=0.000001)
    report = await investigator.investigate(scenario.alert, toolbox)
    assert report.stopped_by == "budget" and provider.requests == []
    assert report.diagnosis.author == "analyzers" and report.diagnosis.category == "code_defect"


async def test_the_loop_limit_bounds_the_tool_rounds() -> None:
    investigator, scenario, toolbox, *_ = _setup({}, use_model=False, max_loops=1)
    report = await investigator.investigate(scenario.alert, toolbox)
    assert report.loops == 1 and {e.loop for e in _of(report, ev.PlanMade)} == {1}
    assert "get_pod_logs" not in [c.tool for c in report.tool_calls]  # a follow-up the limit cut


async def test_a_live_consumer_sees_every_event_once_in_order_and_can_resume() -> None:
    investigator, scenario, toolbox, *_ = _setup({}, use_model=False)
    log = ev.EventLog("inv-1")
    seen: list[ev.Event] = []

    async def consume() -> None:
        async for event in log.subscribe():
            seen.append(event)

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0)
    report = await investigator.investigate(scenario.alert, toolbox, log=log)
    await consumer
    assert [e.seq for e in seen] == list(range(1, len(report.log.events) + 1))
    assert seen[0].type == "investigation_started" and seen[-1].type == "investigation_finished"
    assert {"tool_called", "tool_returned", "finding", "plan_made", "runbook_hit", "cost"} <= {e.type for e in seen}
    resumed = [e.seq async for e in log.subscribe(after=5)]
    assert resumed == list(range(6, len(seen) + 1))
    assert seen[-1].to_dict()["type"] == "investigation_finished" and seen[-1].to_dict()["category"] == "code_defect"


async def test_a_resolved_investigation_is_written_back_and_recalled_next_time(tmp_path) -> None:
    from cascadeflow_incidents.memory import MemoryStore, ReadOnlyMemory, remember

    investigator, scenario, _, _, _ = _setup({}, use_model=False)
    store = MemoryStore(tmp_path / "memory.sqlite")
    first = await investigator.investigate(scenario.alert, recorded_toolbox(scenario.evidence, memory=store))
    record = remember(first, store, fix_worked=True, minutes_to_resolve=18)
    assert record.category == "code_defect" and record.fix_worked and record.services == ("checkout-web",)
    again = await investigator.investigate(scenario.alert, recorded_toolbox(scenario.evidence, memory=store))
    hits = _of(again, ev.MemoryHit)
    assert hits and hits[0].incident_id == record.id
    store.close()
    with pytest.raises(ReadOnlyMemory):
        remember(first, MemoryStore(tmp_path / "memory.sqlite", read_only=True), fix_worked=True)


async def test_an_output_cut_to_budget_is_summarised_on_the_cheap_tier_for_the_reasoning_prompt() -> None:
    from cascadeflow_incidents.tools import ToolLimits

    investigator, scenario, _, provider, _ = _setup({}, plan="cheap", default=GOOD)
    toolbox = recorded_toolbox(scenario.evidence, limits=ToolLimits(output_chars=80))
    report = await investigator.investigate(scenario.alert, toolbox)
    tasks = [r.metadata["task_type"] for r in provider.requests]
    assert tasks.count("data_retrieval") == sum(c.truncated for c in report.tool_calls) > 0
    reasoning = next(r for r in provider.requests if r.metadata["task_type"] == "complex_reasoning")
    assert "Tool summary:" in reasoning.messages[-1].content
    assert report.diagnosis.category == "code_defect"


async def test_every_event_serialises_to_json_for_a_web_stream() -> None:
    import json

    investigator, scenario, toolbox, *_ = _setup({"cheap": [GOOD]}, plan="cheap")
    report = await investigator.investigate(scenario.alert, toolbox)
    decoded = [json.loads(json.dumps(e.to_dict())) for e in report.log.events]
    assert [d["seq"] for d in decoded] == list(range(1, len(decoded) + 1))
    assert all(d["investigation_id"] == report.investigation_id and d["type"] for d in decoded)
    assert decoded[-1]["answer"].startswith("ROOT_CAUSE:")
