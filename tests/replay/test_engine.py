import random
from decimal import Decimal

import pytest
from replay_fixtures import HEADER, answer, write_jsonl

from cascadeflow.cascade.quality import QualityConfig
from cascadeflow.errors import ConfigurationError
from cascadeflow.pricing import PriceBook
from cascadeflow.replay.engine import (
    ReplaySetup,
    fit_calibration,
    record_verdicts,
    replay,
    sweep,
    sweep_recorded,
    with_calibration,
)
from cascadeflow.replay.format import ReplayDataset, load_dataset
from cascadeflow.replay.report import policy_point, reference

ONLY = QualityConfig(signals=("structure", "logprob"))  # deterministic signals the test controls
CHEAP = Decimal(100 * 1 + 10 * 2) / 1_000_000  # 100 input, 10 output tokens at $1/$2 per million
STRONG = Decimal(100 * 10 + 10 * 20) / 1_000_000


def row(qid, cheap, strong):
    return {"id": qid, "messages": [{"role": "user", "content": f"question {qid}"}],
            "answers": {"cheap": cheap, "strong": strong}}


@pytest.fixture
def known(tmp_path):
    rows = [
        row("q1", answer("The answer is 4.", True, confidence=0.9), answer("4", True)),
        row("q2", answer("The answer is 6.", False, confidence=0.6), answer("9", True)),
        row("q3", answer("The answer is 7.", False, confidence=0.3), answer("8", False)),
        row("q4", answer("", True, confidence=0.95), answer("12", True)),  # empty draft: structure vetoes it
    ]
    return load_dataset(write_jsonl(tmp_path / "known.jsonl", [HEADER, *rows]))


async def test_engine_result_matches_the_hand_computed_cost_and_quality(known):
    setup = ReplaySetup.build(known, ["cheap", "strong"], ONLY.with_(threshold=0.5))
    outcomes = await replay(setup)
    assert [o.final_model for o in outcomes] == ["cheap", "cheap", "strong", "strong"]
    assert [o.called for o in outcomes][2] == ("cheap", "strong")
    assert sum(o.cost_usd for o in outcomes) == 4 * CHEAP + 2 * STRONG
    ref = reference(known, "cheap", "strong", PriceBook())
    p = policy_point("cascade", ref, outcomes, threshold=0.5)
    assert p.quality == 0.5 and p.strong_call_fraction == 0.5  # q1 right, q2 wrong, q3 wrong, q4 right
    assert p.cost_fraction == pytest.approx(float((4 * CHEAP + 2 * STRONG) / (4 * STRONG)))
    strict = await replay(setup.with_threshold(0.8))
    assert sum(o.quality for o in strict) == 3
    assert sum(o.cost_usd for o in strict) == 4 * CHEAP + 3 * STRONG


async def test_every_replayed_call_writes_an_audit_record_with_its_tiers(known):
    written = []

    class ListSink:
        def write(self, record):
            written.append(record)

    setup = ReplaySetup.build(known, ["cheap", "strong"], ONLY.with_(threshold=0.5), sinks=[ListSink()])
    await replay(setup)
    assert len(written) == 4
    by_query = {r.metadata["replay_id"]: r for r in written}
    assert [t["model"] for t in by_query["q3"].tiers] == ["together/cheap-model", "together/strong-model"]
    assert by_query["q1"].cost_usd == pytest.approx(float(CHEAP))


async def test_signals_of_each_draft_verdict_are_reported(known):
    outcomes = await replay(ReplaySetup.build(known, ["cheap", "strong"], ONLY.with_(threshold=0.5)))
    assert set(outcomes[0].signals[0]) == {"structure", "logprob"}
    assert outcomes[0].scores[0] == pytest.approx(0.9)


def random_dataset(tmp_path, n=80, stream=7):
    rng = random.Random(stream)
    rows = []
    for i in range(n):
        conf = round(rng.random(), 3)
        cheap_ok = rng.random() < conf
        content = "" if rng.random() < 0.1 else f"draft {i}"
        rows.append(row(f"r{i}", answer(content, cheap_ok, tin=50 + i, tout=5 + i % 7, confidence=conf),
                        answer(f"final {i}", rng.random() < 0.9, tin=50 + i, tout=9)))
    return load_dataset(write_jsonl(tmp_path / "random.jsonl", [HEADER, *rows]))


async def test_recorded_sweep_equals_real_engine_runs(tmp_path):
    ds = random_dataset(tmp_path)
    setup = ReplaySetup.build(ds, ["cheap", "strong"], ONLY)
    verdicts = await record_verdicts(setup)
    thresholds = [0.0, 0.2, 0.5, 0.51, 0.777, 0.95, 1.0]
    swept = sweep_recorded(verdicts, thresholds)
    real = await sweep(setup, thresholds)
    for t in thresholds:
        assert [(o.final_model, o.called, o.cost_usd, o.quality) for o in swept[t]] == \
               [(o.final_model, o.called, o.cost_usd, o.quality) for o in real[t]], t


async def test_default_sweep_points_cover_every_distinct_draft_score(tmp_path):
    ds = random_dataset(tmp_path, n=20)
    verdicts = await record_verdicts(ReplaySetup.build(ds, ["cheap", "strong"], ONLY))
    runs = sweep_recorded(verdicts)
    assert set(verdicts.scores) <= set(runs) and {0.0, 1.0} <= set(runs)
    ref = reference(ds, "cheap", "strong", PriceBook())
    fractions = [policy_point("c", ref, runs[t], threshold=t).strong_call_fraction for t in sorted(runs)]
    assert fractions == sorted(fractions)  # a higher bar never escalates less


async def test_recorded_sweeps_refuse_longer_cascades(tmp_path, tiny_rows):
    header = {**HEADER, "models": {**HEADER["models"], "mid": {"name": "mid-model", "provider": "together",
                                                               "input_price_per_million": 5.0}}}
    for r in tiny_rows:
        r["answers"]["mid"] = answer("x", True)
    ds = load_dataset(write_jsonl(tmp_path / "three.jsonl", [header, *tiny_rows]))
    with pytest.raises(ConfigurationError, match="exactly two tiers"):
        await record_verdicts(ReplaySetup.build(ds, ["cheap", "mid", "strong"], ONLY))
    outcomes = await replay(ReplaySetup.build(ds, ["cheap", "mid", "strong"], ONLY.with_(threshold=0.5)))
    assert len(outcomes) == 2  # no logprob/confidence recorded: no signal but structure, drafts still judged


async def test_calibration_is_fitted_on_the_calibration_data_and_used_by_the_engine(tmp_path):
    train = random_dataset(tmp_path, n=120, stream=1)
    setup = ReplaySetup.build(train, ["cheap", "strong"], ONLY)
    calibration = await fit_calibration(setup)
    assert calibration.n_train == 120
    assert calibration.predict({"structure": 1.0, "logprob": 0.9}) > calibration.predict(
        {"structure": 1.0, "logprob": 0.1})
    calibrated = with_calibration(setup, calibration)
    outcomes = await replay(calibrated.with_threshold(0.5))
    scores = [o.scores[0] for o in outcomes if o.scores[0] is not None]
    assert scores and all(0.0 <= s <= 1.0 for s in scores)


def test_setup_rejects_unknown_or_repeated_models(known):
    with pytest.raises(ConfigurationError, match="has no model 'gpt-9'"):
        ReplaySetup.build(known, ["cheap", "gpt-9"])
    with pytest.raises(ConfigurationError, match="appears twice"):
        ReplaySetup.build(known, ["cheap", "cheap-model"])


async def test_a_final_answer_cut_at_max_tokens_is_not_credited(tmp_path):
    rows = [row("q1", answer("", False, confidence=0.9), answer("a long and correct answer", True, tout=50))]
    ds = load_dataset(write_jsonl(tmp_path / "cut.jsonl", [HEADER, *rows]))
    limited = ReplayDataset(name=ds.name,
                            models={a: cfg.with_(max_output_tokens=20) for a, cfg in ds.models.items()},
                            queries=ds.queries)
    outcomes = await replay(ReplaySetup.build(limited, ["cheap", "strong"], ONLY.with_(threshold=0.5)))
    assert outcomes[0].final_model == "strong" and outcomes[0].quality == 0.0
    assert outcomes[0].cost_usd == CHEAP + Decimal(100 * 10 + 20 * 20) / 1_000_000


async def test_budget_what_if_refuses_escalations_that_no_longer_fit(known):
    # worst cases at the default 4,096 max tokens: a cheap draft reserves ~$0.008, a strong answer ~$0.08;
    # $0.01 in total lets every draft run and refuses both escalations
    setup = ReplaySetup.build(known, ["cheap", "strong"], ONLY.with_(threshold=0.5), budget_usd=0.01)
    outcomes = await replay(setup)
    assert [o.refused for o in outcomes] == [False, False, True, True]
    assert [o.quality for o in outcomes] == [1.0, 0.0, 0.0, 0.0]
    assert [o.cost_usd for o in outcomes] == [CHEAP] * 4  # the refused queries still paid for their drafts
    ref = reference(known, "cheap", "strong", PriceBook())
    assert policy_point("budget", ref, outcomes, threshold=0.5).details["refused"] == 2
    with pytest.raises(ConfigurationError, match="cannot replay a budget"):
        await record_verdicts(setup)


def test_budget_must_be_a_positive_amount(known):
    with pytest.raises(ConfigurationError, match="budget must be a positive number"):
        ReplaySetup.build(known, ["cheap", "strong"], budget_usd=-1)


def test_sync_twins_run_outside_an_event_loop(known):
    from cascadeflow.replay import replay_sync, run_study_sync

    setup = ReplaySetup.build(known, ["cheap", "strong"], ONLY.with_(threshold=0.5))
    outcomes = replay_sync(setup)
    assert [o.final_model for o in outcomes] == ["cheap", "cheap", "strong", "strong"]
    study = run_study_sync(known, setup, threshold=0.8)
    assert study.points[0].quality == 0.75


async def test_sync_twin_is_refused_inside_a_running_loop(known):
    from cascadeflow.replay import replay_sync

    with pytest.raises(RuntimeError, match="replay_sync is the synchronous twin"):
        replay_sync(ReplaySetup.build(known, ["cheap", "strong"], ONLY))
