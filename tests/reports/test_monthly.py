"""The monthly report: the month's records only, and each recommendation raised by the data that calls for it
and not by data that does not."""

from __future__ import annotations

import dataclasses

import pytest

from cascadeflow.errors import ConfigurationError
from cascadeflow.reports import RecommendationRules, monthly_report
from cascadeflow.reports.monthly import month_bounds
from cascadeflow.trace.jsonl import JsonlSink
from tests.reports.factory import VERIFIER, call

NANO = "openai/gpt-4.1-nano"


def write(path, records):
    sink = JsonlSink(path)
    for record in records:
        sink.write(record)
    sink.close()
    return path


def month_of_calls() -> list:
    records = []
    for i in range(100):  # code drafts by the mini model: 95 of 100 accepted
        records.append(call(i, day=f"2026-11-{1 + i % 28:02d}", user="alice" if i % 2 else "bob",
                            feature="chat", task="code", action="escalate" if i % 20 == 0 else "accept"))
    for i in range(100, 160):  # summaries drafted by nano: never accepted, always escalated
        base = call(i, day="2026-11-10", user="carol", feature="summarise", task="summary", action="escalate")
        tiers = [dict(base.tiers[0], model=NANO), base.tiers[1]]
        records.append(dataclasses.replace(base, tiers=tiers, model_requested=NANO))
    return records


@pytest.fixture
def rules():
    return RecommendationRules(min_calls=50)


def kinds(found):
    return sorted(r.kind for r in found.recommendations)


def test_reliable_drafters_useless_tiers_and_cost_drivers_are_found(tmp_path, rules):
    log = write(tmp_path / "audit.jsonl", month_of_calls())
    found = monthly_report(log, "2026-11", rules=rules)
    by_kind = {r.kind: r for r in found.recommendations}
    assert by_kind["reliable_drafter"].figures["task_type"] == "code"
    assert by_kind["reliable_drafter"].figures["acceptance"] == pytest.approx(0.95)
    assert by_kind["useless_tier"].figures == pytest.approx(
        {"model": NANO, "calls": 60, "acceptance": 0.0,
         "rejected_cost_usd": sum(r.tiers[0]["cost_usd"] for r in month_of_calls()[100:])})
    drivers = [r.figures for r in found.recommendations if r.kind == "cost_driver"]
    assert {"user": "carol"} .items() <= drivers[0].items()  # carol's escalated summaries cost the most
    assert found.by_model.baseline_model == VERIFIER
    assert "Total queries: 160" in found.to_text()


def test_a_month_without_findings_recommends_nothing(tmp_path, rules):
    calm = [call(i, day="2026-11-05", user=f"user{i % 4}", feature=f"f{i % 4}", task="code",
                 action="accept" if i % 2 else "escalate") for i in range(40)]
    found = monthly_report(write(tmp_path / "audit.jsonl", calm), "2026-11", rules=rules)
    assert found.recommendations == ()
    assert "none: no finding crossed its rule" in found.to_text()


def test_other_months_are_left_out(tmp_path, rules):
    records = [*month_of_calls(), call(500, day="2026-12-01", user="dave", feature="chat", task="code",
                                       action="accept"), call(501, day="2026-10-31", user="dave", feature="chat",
                                                              task="code", action="accept")]
    found = monthly_report(write(tmp_path / "audit.jsonl", records), "2026-11", rules=rules)
    assert found.by_model.total.calls == 160 and "dave" not in {r.key[0] for r in found.by_user.rows}
    assert [r.key[0] for r in found.daily.rows if not r.key[0].startswith("2026-11")] == []


def test_cache_opportunities_from_observed_hits_and_repeated_prompts(tmp_path, rules):
    prompt = [{"role": "user", "content": "What is our refund policy?"}]
    records = [call(i, day="2026-11-03", user="alice", feature="faq", task="qa", action="accept",
                    cache={"hit": False, "would_hit": True}) for i in range(3)]
    records += [call(10 + i, day="2026-11-04", user="alice", feature="faq", task="qa", action="accept",
                     prompt=prompt) for i in range(4)]
    path = tmp_path / "audit.jsonl"
    sink = JsonlSink(path, record_content=True)
    for record in records:
        sink.write(record)
    sink.close()
    found = monthly_report(path, "2026-11", rules=rules)
    opportunities = [r.figures for r in found.recommendations if r.kind == "cache_opportunity"]
    cost = records[0].cost_usd
    assert opportunities == [pytest.approx({"calls": 3, "cost_usd": 3 * cost}),
                             pytest.approx({"calls": 3, "cost_usd": 3 * cost})]


def test_a_budget_near_its_limit_is_flagged(tmp_path, rules):
    log = write(tmp_path / "audit.jsonl", month_of_calls())
    total = monthly_report(log, "2026-11", rules=rules).by_model.total.cost_usd
    assert "budget" in kinds(monthly_report(log, "2026-11", budget=total / 0.95, rules=rules))
    assert "budget" not in kinds(monthly_report(log, "2026-11", budget=total * 2, rules=rules))


def test_month_bounds_cover_the_whole_month_and_refuse_other_text():
    assert month_bounds("2026-12") == ("2026-12-01T00:00:00.000Z", "2026-12-31T23:59:59.999Z")
    assert month_bounds("2028-02")[1] == "2028-02-29T23:59:59.999Z"
    with pytest.raises(ConfigurationError, match="YYYY-MM"):
        month_bounds("November")


def test_the_report_serialises(tmp_path, rules):
    found = monthly_report(write(tmp_path / "audit.jsonl", month_of_calls()), "2026-11", rules=rules)
    data = found.to_dict()
    assert data["month"] == "2026-11" and data["by_user"]["total"]["calls"] == 160
    assert {r["kind"] for r in data["recommendations"]} == set(kinds(found))
