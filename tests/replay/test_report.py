from decimal import Decimal

import pytest
from replay_fixtures import HEADER, answer, write_jsonl

from cascadeflow.errors import ConfigurationError
from cascadeflow.pricing import PriceBook
from cascadeflow.replay.format import load_dataset
from cascadeflow.replay.report import (
    QueryOutcome,
    baselines,
    choose_threshold,
    policy_point,
    random_point,
    reference,
)

# cheap: $1/M in, $2/M out; strong: $10/M in, $20/M out; every answer 100 in / 10 out tokens
CHEAP = Decimal("0.00012")  # 100*1 + 10*2 = 120 micro-USD
STRONG = Decimal("0.0012")


@pytest.fixture
def four(tmp_path):
    labels = [(True, True), (False, True), (False, False), (True, False)]
    rows = [{"id": f"q{i}", "messages": [{"role": "user", "content": "x"}],
             "answers": {"cheap": answer("c", c), "strong": answer("s", s)}} for i, (c, s) in enumerate(labels)]
    return load_dataset(write_jsonl(tmp_path / "four.jsonl", [HEADER, *rows]))


def test_reference_prices_recorded_answers(four):
    ref = reference(four, "cheap", "strong", PriceBook())
    assert ref.cheap_cost == (CHEAP,) * 4 and ref.strong_total == STRONG * 4
    assert (ref.q_cheap, ref.q_strong) == (0.5, 0.5)


def test_baselines_by_hand(four):
    ref = reference(four, "cheap", "strong", PriceBook())
    points = {p.name: p for p in baselines(ref, strong_fraction=0.25)}
    assert points["cheap-only"].cost_fraction == pytest.approx(0.1)
    assert points["strong-only"].quality_fraction == 1.0
    oracle = points["oracle"]  # only q1 goes to strong (cheap wrong, strong right)
    assert oracle.strong_call_fraction == 0.25 and oracle.quality == 0.75
    assert oracle.cost_usd == pytest.approx(float(CHEAP * 3 + STRONG))
    rnd = points["random@0.250"]
    assert rnd.quality == 0.5
    assert rnd.cost_usd == pytest.approx(float(Decimal("0.75") * CHEAP * 4 + Decimal("0.25") * STRONG * 4))


def test_gap_recovered_is_none_when_models_tie(four):
    ref = reference(four, "cheap", "strong", PriceBook())
    assert random_point(ref, 0.5).gap_recovered is None


def test_policy_point_by_hand(tmp_path):
    rows = [{"id": f"q{i}", "messages": [{"role": "user", "content": "x"}],
             "answers": {"cheap": answer("c", c), "strong": answer("s", s)}}
            for i, (c, s) in enumerate([(True, True), (False, True), (False, True), (False, False)])]
    ds = load_dataset(write_jsonl(tmp_path / "p.jsonl", [HEADER, *rows]))
    ref = reference(ds, "cheap", "strong", PriceBook())  # q_cheap 0.25, q_strong 0.75
    outcomes = [QueryOutcome(query_id="q0", final_model="cheap", called=("cheap",), cost_usd=CHEAP,
                             quality=1.0),
                QueryOutcome(query_id="q1", final_model="strong", called=("cheap", "strong"),
                             cost_usd=CHEAP + STRONG, quality=1.0),
                QueryOutcome(query_id="q2", final_model="cheap", called=("cheap",), cost_usd=CHEAP,
                             quality=0.0),
                QueryOutcome(query_id="q3", final_model="cheap", called=("cheap",), cost_usd=CHEAP,
                             quality=0.0)]
    p = policy_point("cascade", ref, outcomes, threshold=0.5)
    assert p.strong_call_fraction == 0.25
    assert p.quality == 0.5 and p.quality_fraction == pytest.approx(2 / 3)
    assert p.gap_recovered == pytest.approx(0.5)
    assert p.cost_usd == pytest.approx(float(CHEAP * 4 + STRONG))
    assert p.cost_fraction == pytest.approx(float((CHEAP * 4 + STRONG) / (STRONG * 4)))
    assert p.details["draft_acceptance"] == 0.75
    # per-query difference to strong-only: (0, 0, -1, 0); mean -0.25, sample variance 0.25, SE sqrt(0.25/4)
    assert p.paired_se == pytest.approx(0.25)


def test_choose_threshold_takes_the_cheapest_point_reaching_the_target(four):
    ref = reference(four, "cheap", "strong", PriceBook())
    from cascadeflow.replay.report import point
    pts = [point("a", ref, threshold=0.9, strong_fraction=0.9, cost=Decimal(3), quality=0.5),
           point("b", ref, threshold=0.5, strong_fraction=0.5, cost=Decimal(2), quality=0.47),
           point("c", ref, threshold=0.7, strong_fraction=0.7, cost=Decimal("2.5"), quality=0.48)]
    assert choose_threshold(pts, 0.95).name == "c"
    assert choose_threshold(pts, 1.0).name == "a"
    assert choose_threshold(pts, 1.01) is None


def test_a_confidence_discounts_each_point_by_its_paired_standard_error(four):
    ref = reference(four, "cheap", "strong", PriceBook())  # q_strong 0.5
    from cascadeflow.replay.report import lower_quality_fraction, point
    pts = [point("a", ref, threshold=0.9, strong_fraction=0.9, cost=Decimal(3), quality=0.5, paired_se=0.0),
           point("c", ref, threshold=0.7, strong_fraction=0.7, cost=Decimal("2.5"), quality=0.48, paired_se=0.01)]
    # c measures 0.96 of strong-only; its 95% lower bound is (0.48 - 1.6449 * 0.01) / 0.5 = 0.9271
    assert lower_quality_fraction(pts[1], 0.95) == pytest.approx(0.92710, abs=1e-5)
    assert choose_threshold(pts, 0.95).name == "c"
    assert choose_threshold(pts, 0.95, confidence=0.95).name == "a"
    assert choose_threshold(pts, 0.95, confidence=0.5).name == "c"  # z = 0: the plain rule
    assert choose_threshold(pts, 0.92, confidence=0.95).name == "c"


def test_a_confidence_needs_policy_points_and_a_level_in_range(four):
    ref = reference(four, "cheap", "strong", PriceBook())
    from cascadeflow.replay.report import point
    bare = [point("b", ref, threshold=0.5, strong_fraction=0.5, cost=Decimal(2), quality=0.5)]
    with pytest.raises(ValueError, match="paired_se"):
        choose_threshold(bare, 0.95, confidence=0.9)
    for bad in (1.0, 0.4, True, "0.95"):
        with pytest.raises(ConfigurationError, match="confidence"):
            choose_threshold(bare, 0.95, confidence=bad)
