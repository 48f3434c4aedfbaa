"""CostForecaster on histories whose weekday pattern and growth are known."""

from datetime import date, timedelta

import numpy as np
import pytest

from cascadeflow.errors import ConfigurationError
from cascadeflow.insights.forecast import CostForecaster, daily_costs
from cascadeflow.trace.records import AuditRecord

START = date(2026, 3, 2)  # a Monday
WEEKDAY = [1.2, 1.2, 1.1, 1.1, 1.0, 0.5, 0.4]


def history(days=56, growth=1.0, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    return {START + timedelta(d): 10.0 * growth ** d * WEEKDAY[d % 7] * float(np.exp(rng.normal(0, noise)))
            for d in range(days)}


def test_a_noiseless_weekly_pattern_is_continued_exactly():
    forecast = CostForecaster().predict(historical_data=history(), days_ahead=14)
    expected = [10.0 * WEEKDAY[(56 + h) % 7] for h in range(14)]
    assert [d.predicted_cost for d in forecast.days] == pytest.approx(expected, rel=1e-6)
    assert forecast.predicted_cost == pytest.approx(sum(expected), rel=1e-6)
    assert forecast.days[0].day == START + timedelta(56)


def test_fitted_growth_is_carried_forward_and_growth_rate_replaces_it():
    grown = CostForecaster().predict(historical_data=history(growth=1.01), days_ahead=7)
    assert grown.daily_growth == pytest.approx(1.01, rel=1e-4)  # growth leaks a little into weekday factors
    flat = CostForecaster().predict(historical_data=history(), days_ahead=30, growth_rate=1.2)
    assert flat.daily_growth == pytest.approx(1.2 ** (1 / 30))
    assert flat.days[-1].predicted_cost / flat.days[-8].predicted_cost == pytest.approx(1.2 ** (7 / 30))


def test_bounds_contain_the_forecast_and_widen_with_noise_and_distance():
    quiet = CostForecaster().predict(historical_data=history(noise=0.05), days_ahead=28)
    loud = CostForecaster().predict(historical_data=history(noise=0.3), days_ahead=28)
    assert all(d.lower_bound < d.predicted_cost < d.upper_bound for d in quiet.days)
    assert loud.upper_bound - loud.lower_bound > quiet.upper_bound - quiet.lower_bound
    first, later = quiet.days[0], quiet.days[21]  # same weekday, three weeks further
    assert later.upper_bound / later.lower_bound > first.upper_bound / first.lower_bound


def test_about_the_stated_share_of_noisy_days_fall_inside_the_interval():
    data = history(days=140, noise=0.2, seed=3)
    inside = total = 0
    for origin in range(28, 133, 7):
        past = {d: c for d, c in data.items() if (d - START).days < origin}
        for day in CostForecaster(interval=0.8).predict(historical_data=past, days_ahead=7).days:
            inside += day.lower_bound <= data[day.day] <= day.upper_bound
            total += 1
    assert 0.65 <= inside / total <= 0.95


def test_heavy_tailed_noise_still_gets_about_the_stated_share_inside():
    """The interval comes from the model's own backtested errors, not from normal quantiles."""
    inside = total = 0
    for seed in range(3):
        rng = np.random.default_rng(seed)
        data = {START + timedelta(d): 10.0 * WEEKDAY[d % 7] * float(np.exp(0.15 * rng.standard_t(3)))
                for d in range(210)}
        for origin in range(56, 203, 7):
            past = {d: c for d, c in data.items() if (d - START).days < origin}
            for day in CostForecaster(interval=0.8).predict(historical_data=past, days_ahead=7).days:
                inside += day.lower_bound <= data[day.day] <= day.upper_bound
                total += 1
    assert 0.72 <= inside / total <= 0.88


def spent(timestamp, cost):
    return AuditRecord(timestamp=timestamp, request_id=f"r-{timestamp}-{cost}", run_id=None, user_id=None, mode="off",
                       action="allow", model_requested="m", model_selected="m", routing_reason="", input_tokens=1,
                       output_tokens=1, cost_usd=cost, latency_ms=1.0, budget_remaining=None, price_version="v")


def test_audit_records_are_summed_per_day():
    records = [spent(f"2026-03-0{d}T10:00:00+00:00", 0.5) for d in (2, 3) for k in range(3)]
    assert daily_costs(records) == {date(2026, 3, 2): 1.5, date(2026, 3, 3): 1.5}


def test_records_read_back_from_a_jsonl_log_are_summed_per_day(tmp_path):
    from cascadeflow.trace.jsonl import JsonlSink
    from cascadeflow.trace.reader import iter_records

    sink = JsonlSink(tmp_path / "audit.jsonl")
    for d, cost in ((2, 0.25), (2, 0.5), (4, 1.0)):
        sink.write(spent(f"2026-03-0{d}T23:00:00+00:00", cost))
    sink.close()
    assert daily_costs(iter_records(tmp_path / "audit.jsonl")) == {date(2026, 3, 2): 0.75, date(2026, 3, 4): 1.0}


@pytest.mark.parametrize("kwargs, message", [
    ({"historical_data": {START: 1.0}}, "at least 14 days"),
    ({"historical_data": 12.5}, "historical_data"),
    ({"historical_data": {"not a day": 1.0}}, "not a date"),
    ({"historical_data": history(), "days_ahead": 0}, "days_ahead"),
    ({"historical_data": history(), "growth_rate": -1}, "growth_rate"),
])
def test_bad_input_is_rejected_naming_what_to_pass(kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        CostForecaster().predict(**kwargs)


def test_bad_settings_are_rejected():
    with pytest.raises(ConfigurationError, match="interval"):
        CostForecaster(interval=80)
