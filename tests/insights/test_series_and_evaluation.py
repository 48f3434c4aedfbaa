"""The synthetic LLM cost series and the event-level scores of alerts."""

import itertools

import numpy as np
import pytest

from cascadeflow.insights.evaluation import score_alerts
from cascadeflow.insights.series import KINDS, Incident, generate


def test_a_series_is_reproducible_from_its_seed_and_differs_across_seeds():
    a, b, c = generate(7, weeks=3), generate(7, weeks=3), generate(8, weeks=3)
    assert np.array_equal(a.cost, b.cost) and not np.array_equal(a.cost, c.cost)


def test_incidents_come_after_the_warmup_do_not_overlap_and_cover_every_kind():
    series = generate(3)
    assert len(series.incidents) == 8 and {i.kind for i in series.incidents} == set(KINDS)
    assert all(i.start >= series.warmup for i in series.incidents)
    ends = [(i.start, i.end) for i in series.incidents]
    assert all(prev[1] < nxt[0] for prev, nxt in itertools.pairwise(ends))


def test_injected_incidents_move_the_signal_they_describe():
    series = generate(11)
    for incident in series.incidents:
        span = slice(incident.start, incident.end + 1)
        before = slice(incident.start - 96, incident.start)
        if incident.kind == "spike":
            assert series.calls[span].mean() > 2 * np.median(series.calls[before])
        elif incident.kind == "verifier_jump":
            assert np.nanmean(series.verifier_share[span]) > np.nanmean(series.verifier_share[before]) + 0.15


def test_event_scores_count_first_alerts_delays_and_false_alerts():
    incidents = [Incident(kind="spike", start=100, end=102), Incident(kind="drift", start=500, end=560)]
    score = score_alerts([50, 101, 102, 530, 900], incidents, weeks=2.0, grace=5)
    assert (score.detected, score.false_alerts, score.alerts) == (2, 2, 5)
    assert score.delays == (1, 30)
    assert score.recall == 1.0 and score.precision == pytest.approx(3 / 5)
    assert score.false_alerts_per_week == 1.0
    assert score.f1 == pytest.approx(2 * 0.6 / 1.6)


def test_an_alert_in_the_grace_period_after_an_incident_still_detects_it():
    score = score_alerts([105], [Incident(kind="spike", start=100, end=102)], weeks=1.0, grace=5)
    assert score.detected == 1 and score.false_alerts == 0
