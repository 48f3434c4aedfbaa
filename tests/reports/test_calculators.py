"""ROI and self-hosting break-even: the worked examples of docs/reports.md, the identities the formulas must
keep, and inputs that cannot be right refused."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cascadeflow.errors import ConfigurationError
from cascadeflow.reports import cascade_query_cost, query_cost, roi, self_hosting_break_even

DRAFTER = query_cost(input_tokens=400, output_tokens=100, input_per_million=0.15, output_per_million=0.60)
VERIFIER = query_cost(input_tokens=400, output_tokens=100, input_per_million=2.50, output_per_million=10.00)


def test_the_worked_example_of_the_docs():
    assert DRAFTER == pytest.approx(0.000120) and VERIFIER == pytest.approx(0.002000)
    assert cascade_query_cost(drafter=DRAFTER, verifier=VERIFIER, acceptance=0.7) == pytest.approx(0.000720)
    per_query = cascade_query_cost(drafter=DRAFTER, verifier=VERIFIER, acceptance=0.7, cache_hit_rate=0.2)
    assert per_query == pytest.approx(0.000576)
    estimate = roi(monthly_queries=1_000_000, baseline_cost_per_query=VERIFIER, cascade_cost_per_query=per_query,
                   one_time_cost=5_000)
    assert estimate.baseline_monthly == pytest.approx(2_000)
    assert estimate.cascade_monthly == pytest.approx(576)
    assert estimate.monthly_savings == pytest.approx(1_424)
    assert estimate.annual_savings == pytest.approx(17_088)
    assert estimate.savings_pct == pytest.approx(0.712)
    assert estimate.payback_months == pytest.approx(3.511, abs=1e-3)
    assert estimate.first_year_roi == pytest.approx(2.4176)
    decision = self_hosting_break_even(monthly_queries=5_000_000, drafter_cost_per_query=DRAFTER,
                                       self_hosted_monthly=350)
    assert decision.break_even_queries == pytest.approx(2_916_667, abs=1)
    assert (decision.decision, decision.cloud_monthly, decision.monthly_savings) == \
        ("self_host", pytest.approx(600), pytest.approx(250))


def test_the_chatbot_example_of_the_docs():
    mini = query_cost(input_tokens=500, output_tokens=200, input_per_million=0.15, output_per_million=0.60)
    full = query_cost(input_tokens=500, output_tokens=200, input_per_million=2.50, output_per_million=10.00)
    per_query = cascade_query_cost(drafter=mini, verifier=full, acceptance=0.7)
    assert (mini, full, per_query) == (pytest.approx(0.000195), pytest.approx(0.003250), pytest.approx(0.001170))
    estimate = roi(monthly_queries=300_000, baseline_cost_per_query=full, cascade_cost_per_query=per_query)
    assert (estimate.baseline_monthly, estimate.cascade_monthly) == (pytest.approx(975), pytest.approx(351))
    assert (estimate.monthly_savings, estimate.annual_savings) == (pytest.approx(624), pytest.approx(7_488))
    assert estimate.savings_pct == pytest.approx(0.64)
    # with 30% escalated, savings stay below 70% whatever the drafter costs
    assert 1 - cascade_query_cost(drafter=0.0, verifier=full, acceptance=0.7) / full == pytest.approx(0.7)
    thousand = 1_000 * cascade_query_cost(drafter=0.00015, verifier=0.00625, acceptance=0.7)
    assert thousand == pytest.approx(2.025) and 1 - thousand / 6.25 == pytest.approx(0.676)


def test_the_cache_compounds_on_the_cascade_savings():
    without = 1 - cascade_query_cost(drafter=DRAFTER, verifier=VERIFIER, acceptance=0.7) / VERIFIER
    for hit_rate in (0.2, 0.4):
        with_cache = 1 - cascade_query_cost(drafter=DRAFTER, verifier=VERIFIER, acceptance=0.7,
                                            cache_hit_rate=hit_rate) / VERIFIER
        assert with_cache == pytest.approx(1 - (1 - hit_rate) * (1 - without))
    assert without == pytest.approx(0.64)


def test_below_break_even_the_cloud_drafter_is_kept():
    decision = self_hosting_break_even(monthly_queries=1_000_000, drafter_cost_per_query=DRAFTER,
                                       self_hosted_monthly=350)
    assert decision.decision == "cloud" and decision.monthly_savings == pytest.approx(120 - 350)


def test_counting_only_accepted_drafts_raises_the_break_even_volume_by_one_over_the_share():
    every = self_hosting_break_even(monthly_queries=1, drafter_cost_per_query=DRAFTER, self_hosted_monthly=350)
    accepted = self_hosting_break_even(monthly_queries=1, drafter_cost_per_query=DRAFTER, self_hosted_monthly=350,
                                       drafted_share=0.7)
    assert accepted.break_even_queries == pytest.approx(every.break_even_queries / 0.7)


def test_a_free_drafter_never_breaks_even():
    assert math.isinf(self_hosting_break_even(monthly_queries=10**9, drafter_cost_per_query=0.0,
                                              self_hosted_monthly=350).break_even_queries)


money = st.floats(min_value=0, max_value=1.0, allow_nan=False)


@given(queries=st.integers(min_value=1, max_value=10**9), baseline=money, cascade=money,
       overhead=st.floats(min_value=0, max_value=10_000))
def test_savings_are_baseline_less_cascade_and_a_year_is_twelve_months(queries, baseline, cascade, overhead):
    estimate = roi(monthly_queries=queries, baseline_cost_per_query=baseline, cascade_cost_per_query=cascade,
                   monthly_overhead=overhead)
    assert estimate.monthly_savings == pytest.approx(estimate.baseline_monthly - estimate.cascade_monthly)
    assert estimate.annual_savings == pytest.approx(12 * estimate.monthly_savings)
    assert estimate.payback_months in (None, 0.0) and estimate.first_year_roi is None  # nothing to repay


@pytest.mark.parametrize("bad", [
    lambda: roi(monthly_queries=-1, baseline_cost_per_query=1, cascade_cost_per_query=1),
    lambda: roi(monthly_queries=1, baseline_cost_per_query=float("nan"), cascade_cost_per_query=1),
    lambda: cascade_query_cost(drafter=1, verifier=1, acceptance=70),
    lambda: cascade_query_cost(drafter=1, verifier=1, acceptance=0.7, cache_hit_rate=-0.1),
    lambda: self_hosting_break_even(monthly_queries=1, drafter_cost_per_query=1, self_hosted_monthly=1,
                                    drafted_share=1.5),
    lambda: query_cost(input_tokens=True, output_tokens=1, input_per_million=1, output_per_million=1),
])
def test_impossible_inputs_are_refused(bad):
    with pytest.raises(ConfigurationError):
        bad()
