"""tune_threshold: an agent's threshold chosen on calibration data and measured on held-out data."""

from decimal import Decimal

import pytest
from replay_fixtures import HEADER, answer, write_jsonl

from cascadeflow.cascade.agent import CascadeAgent
from cascadeflow.cascade.quality import QualityConfig
from cascadeflow.errors import ConfigurationError
from cascadeflow.models import ModelConfig
from cascadeflow.replay.engine import ReplaySetup, replay
from cascadeflow.replay.format import load_dataset
from cascadeflow.replay.report import policy_point, reference
from cascadeflow.replay.tuning import tune_threshold, tune_threshold_sync

CHEAP = ModelConfig("cheap-model", provider="together", input_price_per_million=1.0, output_price_per_million=2.0)
STRONG = ModelConfig("strong-model", provider="together", input_price_per_million=10.0,
                     output_price_per_million=20.0)
JUDGE = QualityConfig(signals=("structure", "logprob"), threshold=0.5)  # the draft score is its confidence
C = Decimal(100 * 1 + 10 * 2) / 1_000_000
S = Decimal(100 * 10 + 10 * 20) / 1_000_000


def rows(prefix, drafts, strong_right=None):
    """drafts: (confidence, draft correct) per query; the strong model is right unless listed otherwise."""
    strong_right = strong_right or [True] * len(drafts)
    return [{"id": f"{prefix}{i}", "messages": [{"role": "user", "content": f"question {prefix}{i}"}],
             "answers": {"cheap": answer(f"The answer is {i}.", ok, confidence=conf),
                         "strong": answer(f"{i}", strong)}}
            for i, ((conf, ok), strong) in enumerate(zip(drafts, strong_right, strict=True))]


CALIBRATION = [(0.9, True), (0.8, True), (0.7, False), (0.6, True), (0.5, False)]
EVALUATED = [(0.85, True), (0.75, False), (0.95, False), (0.4, True)]


@pytest.fixture
def cal(tmp_path):
    return load_dataset(write_jsonl(tmp_path / "cal.jsonl", [HEADER, *rows("c", CALIBRATION)]))


@pytest.fixture
def ev(tmp_path):
    return write_jsonl(tmp_path / "ev.jsonl", [HEADER, *rows("e", EVALUATED)])


def agent(quality=JUDGE):
    return CascadeAgent(models=[CHEAP, STRONG], quality_config=quality)


async def test_the_cheapest_threshold_reaching_the_target_on_calibration_is_measured_on_the_other_data(cal, ev):
    tuning = await tune_threshold(agent(), ev, target_quality=0.95, calibrate_on=cal)
    # on calibration, all-right needs both wrong drafts (0.7, 0.5) escalated: 0.8 is the cheapest such bar
    assert tuning.threshold == pytest.approx(0.8) and tuning.target_reached
    assert tuning.chosen.quality == 1.0 and tuning.chosen.cost_usd == pytest.approx(float(5 * C + 3 * S))
    # on the evaluated data 0.8 accepts 0.85 (right) and 0.95 (wrong), escalates 0.75 and 0.4 (strong right)
    held = tuning.evaluated
    assert held.threshold == tuning.threshold
    assert held.n == 4 and held.quality == pytest.approx(3 / 4) and held.strong_call_fraction == 0.5
    assert held.cost_usd == pytest.approx(float(4 * C + 2 * S))
    assert held.cost_fraction == pytest.approx(float((4 * C + 2 * S) / (4 * S)))
    assert held.gap_recovered == pytest.approx((3 / 4 - 1 / 2) / (1 - 1 / 2))
    assert tuning.random_at_same_fraction.strong_call_fraction == 0.5
    assert {b.name for b in tuning.baselines} == {"cheap-only", "strong-only", "oracle"}
    assert tuning.quality_config.threshold == pytest.approx(0.8)
    assert tuning.quality_config.signals == JUDGE.signals


async def test_the_held_out_point_is_a_real_engine_run_at_the_chosen_threshold(cal, ev):
    tuning = await tune_threshold(agent(), ev, target_quality=0.95, calibrate_on=cal)
    dataset = load_dataset(ev)
    setup = ReplaySetup.build(dataset, ["cheap", "strong"], JUDGE.with_(threshold=tuning.threshold))
    outcomes = await replay(setup)
    again = policy_point("x", reference(dataset, "cheap", "strong", setup.price_book), outcomes, threshold=None)
    assert (again.quality, again.cost_usd) == (tuning.evaluated.quality, tuning.evaluated.cost_usd)
    # and the agent tuned this way gets the same numbers from evaluate()
    metrics = await CascadeAgent(models=[CHEAP, STRONG], quality_config=tuning.quality_config).evaluate(dataset)
    assert metrics.avg_quality == tuning.evaluated.quality and float(metrics.total_cost) == tuning.evaluated.cost_usd


async def test_a_lower_target_picks_a_cheaper_threshold(cal, ev):
    tuning = await tune_threshold(agent(), ev, target_quality=0.8, calibrate_on=cal)
    assert tuning.threshold == pytest.approx(0.6)  # accepts the wrong 0.7 draft: 4 of 5 right, one escalation
    assert tuning.chosen.quality == pytest.approx(4 / 5) and tuning.chosen.strong_call_fraction == 0.2


async def test_a_confidence_chooses_by_the_lower_bound_on_calibration(cal, ev):
    tuning = await tune_threshold(agent(), ev, target_quality=0.8, calibrate_on=cal, confidence=0.95)
    # 0.6 measures 4/5 but its per-query differences to strong-only (0, 0, -1, 0, 0) have SE 0.2, so its
    # lower bound is 0.8 - 1.645 * 0.2 = 0.47; 0.8 is right on every calibration query (SE 0)
    assert tuning.threshold == pytest.approx(0.8) and tuning.target_reached
    assert tuning.chosen.paired_se == pytest.approx(0.0)
    assert tuning.confidence == 0.95 and tuning.to_dict()["confidence"] == 0.95


async def test_a_bad_confidence_is_refused_before_any_replay(cal, ev):
    with pytest.raises(ConfigurationError, match="confidence"):
        await tune_threshold(agent(), ev, target_quality=0.8, calibrate_on=cal, confidence=1.2)


async def test_an_unreachable_target_falls_back_to_the_best_quality_and_says_so(cal, ev):
    tuning = await tune_threshold(agent(), ev, target_quality=1.4, calibrate_on=cal)
    assert not tuning.target_reached and tuning.chosen.quality == 1.0
    assert tuning.to_dict()["target_reached_on_calibration"] is False


async def test_without_calibration_data_the_estimate_is_cross_validated(tmp_path):
    # every draft at 0.7 or above is right and every one below is wrong: 0.7 is the cheapest perfect bar
    drafts = [(0.9, True), (0.7, True), (0.6, False), (0.8, True), (0.3, False), (0.75, True), (0.5, False),
              (0.95, True)]
    path = write_jsonl(tmp_path / "all.jsonl", [HEADER, *rows("q", drafts)])
    tuning = await tune_threshold(agent(), path, target_quality=0.95, folds=2, seed=3)
    assert tuning.threshold == pytest.approx(0.7) and tuning.target_reached
    assert len(tuning.folds) == 2 and tuning.evaluated.n == 8
    assert tuning.evaluated.quality == 1.0  # any bar chosen on a fold keeps every wrong draft out
    assert tuning.evaluated.name == "cascade (pooled held-out)"
    held = sum(fold["evaluated"]["n"] for fold in tuning.folds)
    assert held == 8


def test_the_sync_twin_returns_the_same_choice(cal, ev):
    assert tune_threshold_sync(agent(), ev, target_quality=0.95, calibrate_on=cal).threshold == pytest.approx(0.8)


async def test_fitting_a_calibration_keeps_it_in_the_tuned_config(cal, ev):
    tuning = await tune_threshold(agent(), ev, target_quality=0.95, calibrate_on=cal, fit_calibration=True)
    assert tuning.quality_config.calibration is not None
    assert tuning.evaluated.n == 4 and 0.0 <= tuning.threshold <= 1.0


@pytest.mark.parametrize("target", [0, -0.5, 2.0, "0.95", True])
async def test_a_bad_target_is_refused(cal, ev, target):
    with pytest.raises(ConfigurationError, match="share of strong-only quality"):
        await tune_threshold(agent(), ev, target_quality=target, calibrate_on=cal)


async def test_calibrating_on_the_measured_queries_is_refused(ev):
    with pytest.raises(ConfigurationError, match="in both calibrate_on and the dataset"):
        await tune_threshold(agent(), ev, calibrate_on=ev)


async def test_bad_folds_and_complexity_thresholds_are_refused(ev):
    with pytest.raises(ConfigurationError, match="k must be between 2"):
        await tune_threshold(agent(), ev, folds=1)
    per_level = JUDGE.with_(thresholds_by_complexity={"simple": 0.5, "hard": 0.9})
    with pytest.raises(ConfigurationError, match="thresholds_by_complexity"):
        await tune_threshold(agent(per_level), ev, folds=2)
    with pytest.raises(ConfigurationError, match="ReplayDataset or the path"):
        await tune_threshold(agent(), 42)


async def test_the_agent_method_tunes_without_changing_the_agent(cal, ev):
    tuned = agent()
    tuning = await tuned.tune_threshold(load_dataset(ev), target_quality=0.95, calibrate_on=cal)
    assert tuning.threshold == pytest.approx(0.8) and tuned.quality_config.threshold == 0.5
    tuned.quality_config = tuning.quality_config
    assert (await tuned.evaluate(load_dataset(ev))).avg_quality == tuning.evaluated.quality
    with pytest.raises(ConfigurationError, match=r"cascadeflow\.replay\.tune_threshold\(agent, path\)"):
        await tuned.tune_threshold(ev)  # a path is loaded by the replay package, above the cascade
