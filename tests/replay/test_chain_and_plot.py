"""Longer cascades (an engine run per threshold) and the cost/quality plot."""

from decimal import Decimal

import pytest
from replay_fixtures import HEADER, answer, write_jsonl

from cascadeflow.cascade.quality import QualityConfig
from cascadeflow.pricing import PriceBook
from cascadeflow.replay.engine import ReplaySetup, replay, sweep
from cascadeflow.replay.format import load_dataset
from cascadeflow.replay.plot import plot_operating_points
from cascadeflow.replay.report import baselines, policy_point, reference
from cascadeflow.replay.study import GRID, run_study

ONLY = QualityConfig(signals=("structure", "logprob"))
THREE = {**HEADER, "models": {
    "cheap": HEADER["models"]["cheap"],
    "mid": {"name": "mid-model", "provider": "together", "input_price_per_million": 4.0,
            "output_price_per_million": 8.0},
    "strong": HEADER["models"]["strong"]}}
CHEAP, MID, STRONG = (Decimal(100 * a + 10 * b) / 1_000_000 for a, b in ((1, 2), (4, 8), (10, 20)))


@pytest.fixture
def chain(tmp_path):
    rows = []
    for i, (c_conf, c_ok, m_conf, m_ok, s_ok) in enumerate([
        (0.9, True, 0.9, True, True),    # cheap accepted at 0.5 and 0.8
        (0.6, False, 0.9, True, True),   # cheap accepted at 0.5; at 0.8 the mid tier answers
        (0.2, False, 0.7, True, True),   # mid answers at 0.5; at 0.8 strong answers
        (0.1, False, 0.3, False, False),  # strong answers at both, and is wrong
    ]):
        rows.append({"id": f"c{i}", "messages": [{"role": "user", "content": f"q{i}"}], "answers": {
            "cheap": answer(f"c{i}", c_ok, confidence=c_conf), "mid": answer(f"m{i}", m_ok, confidence=m_conf),
            "strong": answer(f"s{i}", s_ok, confidence=0.5)}})
    return load_dataset(write_jsonl(tmp_path / "chain.jsonl", [THREE, *rows]))


async def test_three_tier_cascade_by_hand(chain):
    setup = ReplaySetup.build(chain, ["cheap", "mid", "strong"], ONLY)
    runs = await sweep(setup, [0.5, 0.8])
    assert [o.final_model for o in runs[0.5]] == ["cheap", "cheap", "mid", "strong"]
    assert [o.final_model for o in runs[0.8]] == ["cheap", "mid", "strong", "strong"]
    assert sum(o.cost_usd for o in runs[0.5]) == 4 * CHEAP + 2 * MID + STRONG
    assert sum(o.cost_usd for o in runs[0.8]) == 4 * CHEAP + 3 * MID + 2 * STRONG
    ref = reference(chain, "cheap", "strong", PriceBook())
    low = policy_point("c", ref, runs[0.5], threshold=0.5)
    assert low.quality == 0.5 and low.strong_call_fraction == 0.25
    high = policy_point("c", ref, runs[0.8], threshold=0.8)
    assert high.quality == 0.75 and high.strong_call_fraction == 0.5


async def test_study_of_a_longer_cascade_sweeps_the_grid_with_real_runs(chain):
    setup = ReplaySetup.build(chain, ["cheap", "mid", "strong"], ONLY)
    study = await run_study(chain, setup, do_sweep=True)
    assert [p.threshold for p in study.points] == list(GRID)
    at_half = next(p for p in study.points if p.threshold == 0.5)
    direct = policy_point("c", reference(chain, "cheap", "strong", PriceBook()),
                          await replay(setup.with_threshold(0.5)), threshold=0.5)
    assert at_half.cost_usd == direct.cost_usd and at_half.quality == direct.quality


async def test_plot_writes_a_png_with_baselines(chain, tmp_path):
    setup = ReplaySetup.build(chain, ["cheap", "mid", "strong"], ONLY)
    ref = reference(chain, "cheap", "strong", PriceBook())
    points = [policy_point("c", ref, o, threshold=t) for t, o in (await sweep(setup, [0.3, 0.6, 0.9])).items()]
    out = plot_operating_points(tmp_path / "sub" / "p.png", "chain", points, baselines(ref, 0.5), points[1],
                                target=0.9, more_sweeps={"again": points})
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
