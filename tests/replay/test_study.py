import pytest
from replay_fixtures import HEADER, answer, write_jsonl

from cascadeflow.cascade.quality import QualityConfig
from cascadeflow.errors import ConfigurationError
from cascadeflow.replay.engine import ReplaySetup, replay
from cascadeflow.replay.format import load_dataset
from cascadeflow.replay.report import policy_point, reference
from cascadeflow.replay.study import run_study

ONLY = QualityConfig(signals=("structure", "logprob"))


def dataset(tmp_path, name, confs_and_labels):
    rows = [{"id": f"{name}{i}", "messages": [{"role": "user", "content": f"q {i}"}],
             "answers": {"cheap": answer(f"draft {i}", ok, confidence=conf), "strong": answer("s", True)}}
            for i, (conf, ok) in enumerate(confs_and_labels)]
    return load_dataset(write_jsonl(tmp_path / f"{name}.jsonl", [HEADER, *rows]))


@pytest.fixture
def train(tmp_path):  # drafts below 0.5 confidence are wrong
    return dataset(tmp_path, "t", [(0.9, True), (0.8, True), (0.7, True), (0.4, False), (0.2, False)])


@pytest.fixture
def test_set(tmp_path):
    return dataset(tmp_path, "e", [(0.95, True), (0.6, True), (0.45, True), (0.3, False)])


async def test_target_threshold_is_chosen_on_calibration_data_and_measured_on_the_other(train, test_set):
    setup = ReplaySetup.build(test_set, ["cheap", "strong"], ONLY)
    calibration = ReplaySetup.build(train, ["cheap", "strong"], ONLY)
    study = await run_study(test_set, setup, calibration=calibration, target_quality=1.0)
    chosen = study.target["chosen_on_calibration"]
    # on train, quality 1.0 needs the two wrong drafts (0.4, 0.2) escalated: the cheapest bar is 0.7
    assert chosen["threshold"] == pytest.approx(0.7) and chosen["quality_fraction"] == 1.0
    evaluated = study.target["evaluated"]
    # on the evaluated set, 0.7 accepts only the 0.95 draft: three escalations, all strong answers right
    assert evaluated["strong_call_fraction"] == 0.75 and evaluated["quality"] == 1.0
    real = await replay(setup.with_threshold(0.7))
    ref = reference(test_set, "cheap", "strong", setup.price_book)
    assert evaluated["cost_usd"] == pytest.approx(policy_point("x", ref, real, threshold=0.7).cost_usd)
    assert study.target["random_at_same_fraction"]["strong_call_fraction"] == 0.75


async def test_sweep_and_single_threshold_add_points_and_matching_random_baselines(test_set):
    setup = ReplaySetup.build(test_set, ["cheap", "strong"], ONLY)
    study = await run_study(test_set, setup, threshold=0.5, do_sweep=True)
    assert study.points[-1].threshold == 0.5 and study.points[-1].strong_call_fraction == 0.5
    names = {b.name for b in study.baselines}
    assert {"cheap-only", "strong-only", "oracle", "random@0.500"} <= names
    assert study.draft_signals.get("logprob") == 4
    assert study.to_dict()["operating_points"][0]["name"] == "cascade"


async def test_unreachable_target_is_reported_not_faked(train, test_set):
    setup = ReplaySetup.build(test_set, ["cheap", "strong"], ONLY)
    calibration = ReplaySetup.build(train, ["cheap", "strong"], ONLY)
    study = await run_study(test_set, setup, calibration=calibration, target_quality=1.2)
    assert study.target["chosen_on_calibration"] is None and study.target["evaluated"] is None


async def test_target_without_calibration_data_is_refused(test_set):
    setup = ReplaySetup.build(test_set, ["cheap", "strong"], ONLY)
    with pytest.raises(ConfigurationError, match="needs calibration data"):
        await run_study(test_set, setup, target_quality=0.95)


def test_folds_partition_the_queries_and_are_fixed(tmp_path):
    ds = dataset(tmp_path, "f", [(i / 10, True) for i in range(10)])
    folds = ds.folds(3, seed=2)
    tested = [q.id for _, test in folds for q in test.queries]
    assert sorted(tested) == sorted(q.id for q in ds.queries)
    for train, test in folds:
        assert not {q.id for q in train.queries} & {q.id for q in test.queries}
        assert len(train.queries) + len(test.queries) == 10
    assert [q.id for q in ds.folds(3, seed=2)[0][1].queries] == [q.id for q in folds[0][1].queries]
    with pytest.raises(ConfigurationError, match="k must be between 2"):
        ds.folds(1)


async def test_cross_validation_chooses_on_train_parts_and_pools_held_out_results(tmp_path):
    from cascadeflow.replay.study import cross_validate

    confs = [(0.9, True), (0.8, True), (0.7, True), (0.4, False), (0.2, False), (0.95, True), (0.3, False),
             (0.6, True)]
    ds = dataset(tmp_path, "cv", confs)
    folds = ds.folds(2, seed=0)
    result = await cross_validate(folds, ["cheap", "strong"], ONLY, target_quality=1.0, fit=False)
    assert len(result["folds"]) == 2
    # every wrong draft is below 0.5 and every right one above: the cheapest perfect bar on a train part is
    # its lowest right-draft confidence; held-out drafts below that bar are escalated
    conf_of = {f"cv{i}": c for i, (c, _) in enumerate(confs)}
    expected_escalations = 0
    for (train, test), fold in zip(folds, result["folds"], strict=True):
        bar = min(conf_of[q.id] for q in train.queries if q.answers["cheap"].correct)
        assert fold["chosen_on_calibration"]["threshold"] == pytest.approx(bar)
        assert fold["target_reached_on_calibration"] is True
        expected_escalations += sum(1 for q in test.queries if conf_of[q.id] < bar)
    pooled = result["pooled"]
    assert pooled["quality"] == 1.0 and pooled["n"] == 8
    assert pooled["strong_call_fraction"] == pytest.approx(expected_escalations / 8)
    assert result["draft_signals"]["logprob"] == 8


async def test_cross_validation_with_a_fitted_calibration_reports_probability_thresholds(tmp_path):
    from cascadeflow.replay.study import cross_validate

    confs = [((i % 10) / 10 + 0.05, (i % 10) >= 4) for i in range(40)]
    ds = dataset(tmp_path, "cal", confs)
    result = await cross_validate(ds.folds(2, seed=1), ["cheap", "strong"], ONLY, target_quality=1.0, fit=True)
    assert result["calibration_fitted"] is True
    assert result["pooled"]["quality"] == 1.0
    assert result["pooled"]["strong_call_fraction"] == pytest.approx(16 / 40)


def test_escalation_causes_are_read_from_the_engine_verdicts():
    from decimal import Decimal

    from cascadeflow.replay.report import QueryOutcome
    from cascadeflow.replay.study import escalation_causes

    def esc(reason):
        return QueryOutcome(query_id="q", final_model="strong", called=("cheap", "strong"),
                            cost_usd=Decimal(0), quality=1.0, reasons=(reason, "final"))

    outcomes = [esc("rejected: arithmetic: 2+2=5 is wrong"), esc("rejected: arithmetic: 3*3=8"),
                esc("rejected: score=0.40 < 0.70; weakest logprob: low (structure, logprob)"),
                esc("rejected: no signal was available to judge the draft"),
                QueryOutcome(query_id="a", final_model="cheap", called=("cheap",), cost_usd=Decimal(0),
                             quality=1.0, reasons=("accepted: score=0.9",))]
    assert escalation_causes(outcomes) == {"veto:arithmetic": 2, "weakest:logprob": 1, "no-signal": 1}


async def test_real_engine_reasons_classify_vetoes_and_low_scores(test_set, tmp_path):
    from cascadeflow.replay.study import escalation_causes

    rows = [{"id": "v", "messages": [{"role": "user", "content": "q"}],
             "answers": {"cheap": answer("", True, confidence=0.9), "strong": answer("s", True)}},
            {"id": "w", "messages": [{"role": "user", "content": "q"}],
             "answers": {"cheap": answer("fine draft", True, confidence=0.1), "strong": answer("s", True)}}]
    ds = load_dataset(write_jsonl(tmp_path / "why.jsonl", [HEADER, *rows]))
    outcomes = await replay(ReplaySetup.build(ds, ["cheap", "strong"], ONLY.with_(threshold=0.5)))
    assert escalation_causes(outcomes) == {"veto:structure": 1, "weakest:logprob": 1}
