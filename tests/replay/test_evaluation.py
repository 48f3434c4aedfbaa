"""Evaluating an agent on recorded data (`agent.evaluate(dataset)`, `cascadeflow.replay.evaluate(agent, path)`): the
agent's cascade through the replay engine, scored from the labels."""

import json
from decimal import Decimal
from pathlib import Path

import pytest

from cascadeflow.cascade.agent import CascadeAgent
from cascadeflow.cascade.quality import QualityConfig
from cascadeflow.errors import ConfigurationError, ReplayDataError
from cascadeflow.messages import Response, Usage
from cascadeflow.models import ModelConfig
from cascadeflow.replay.engine import ReplaySetup, replay
from cascadeflow.replay.evaluation import evaluate as evaluate_recorded
from cascadeflow.replay.format import load_dataset
from cascadeflow.replay.report import policy_point, reference
from cascadeflow.routing.route import Route
from cascadeflow.runtime.pipeline import Runtime
from cascadeflow.testing import ScriptedProvider

CHEAP = ModelConfig("cheap-model", provider="together", input_price_per_million=1.0, output_price_per_million=2.0)
STRONG = ModelConfig("strong-model", provider="together", input_price_per_million=10.0,
                     output_price_per_million=20.0)
HEADER = {"format": "cascadeflow-replay/1", "name": "hand",
          "models": {"cheap": {"name": "cheap-model", "provider": "together", "input_price_per_million": 1.0,
                               "output_price_per_million": 2.0},
                     "strong": {"name": "strong-model", "provider": "together", "input_price_per_million": 10.0,
                                "output_price_per_million": 20.0}}}
C = Decimal(100 * 1 + 10 * 2) / 1_000_000  # one recorded cheap answer: 100 input, 10 output tokens
S = Decimal(100 * 10 + 10 * 20) / 1_000_000
JUDGE = QualityConfig(signals=("structure", "logprob"), threshold=0.5)  # the draft score is its confidence


def answer(content, correct, confidence=None):
    out = {"content": content, "correct": correct, "input_tokens": 100, "output_tokens": 10}
    if confidence is not None:
        out["confidence"] = confidence
    return out


ROWS = [  # (expected, draft, draft right, draft confidence, strong answer, strong right)
    ("4", "The answer is 4.", True, 0.9, "It is 4.", True),     # accepted, right
    ("9", "The answer is 6.", False, 0.6, "It is 9.", True),    # accepted at 0.5, wrong
    ("8", "The answer is 7.", False, 0.3, "It is 5.", False),   # escalated, strong wrong too
    ("12", "", True, 0.95, "It is 12.", True),                   # empty draft: the structure signal vetoes it
    ("3", "The answer is 2.", False, 0.2, "It is 3.", True),    # escalated, strong right
]


@pytest.fixture
def recorded(tmp_path) -> Path:
    lines = [HEADER] + [
        {"id": f"q{i}", "messages": [{"role": "user", "content": f"question {i}"}],
         "answers": {"cheap": answer(draft, ok, conf), "strong": answer(strong, strong_ok)}}
        for i, (_, draft, ok, conf, strong, strong_ok) in enumerate(ROWS, start=1)]
    path = tmp_path / "hand.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


def agent(quality=JUDGE, **options):
    return CascadeAgent(models=[CHEAP, STRONG], quality_config=quality, **options)


async def test_evaluate_on_recorded_data_matches_the_hand_computed_numbers(recorded):
    metrics = await agent().evaluate(load_dataset(recorded))
    assert metrics.n == 5 and metrics.quality_source == "recorded_label"
    assert metrics.drafter_acceptance == pytest.approx(2 / 5)  # q1 and q2
    assert metrics.escalation_rate == pytest.approx(3 / 5)
    assert metrics.total_cost_decimal == 5 * C + 3 * S and metrics.avg_cost == float((5 * C + 3 * S) / 5)
    assert metrics.avg_quality == pytest.approx(3 / 5)  # q1, q4 (strong), q5 (strong)
    assert metrics.baseline_cost_decimal == 5 * S  # the recorded strong-only cost
    assert metrics.savings_pct == pytest.approx(1 - float((5 * C + 3 * S) / (5 * S)))
    assert metrics.failed == 0 and metrics.scored == 5 and len(metrics.results) == 5
    assert [o.final_model for o in metrics.outcomes] == ["cheap", "cheap", "strong", "strong", "strong"]
    point = metrics.point
    assert point.threshold == 0.5 and point.strong_call_fraction == pytest.approx(3 / 5)
    assert point.quality_fraction == pytest.approx((3 / 5) / (4 / 5))  # strong-only is right on 4 of 5
    assert point.gap_recovered == pytest.approx((3 / 5 - 2 / 5) / (4 / 5 - 2 / 5))
    assert point.cost_fraction == pytest.approx(1 - metrics.savings_pct)


async def test_a_higher_threshold_escalates_the_wrong_confident_draft(recorded):
    metrics = await agent(JUDGE.with_(threshold=0.7)).evaluate(load_dataset(recorded))
    assert metrics.drafter_acceptance == pytest.approx(1 / 5)
    assert metrics.avg_quality == pytest.approx(4 / 5) and metrics.total_cost_decimal == 5 * C + 4 * S


async def test_evaluate_agrees_with_the_replay_engine_the_cli_runs(recorded):
    dataset = load_dataset(recorded)
    metrics = await agent().evaluate(dataset)
    setup = ReplaySetup.build(dataset, ["cheap", "strong"], JUDGE)
    outcomes = await replay(setup)
    assert metrics.outcomes == outcomes
    assert metrics.point == policy_point("evaluate", reference(dataset, "cheap", "strong", setup.price_book),
                                         outcomes, threshold=0.5)


async def test_the_same_answers_live_and_recorded_give_the_same_metrics(recorded):
    def reply(request):
        i = int(request.messages[-1].text.split()[-1])
        _, draft, _, conf, strong, _ = ROWS[i - 1]
        content, confidence = (draft, conf) if request.model == CHEAP.name else (strong, None)
        return Response(content, request.model, "scripted", Usage(100, 10), confidence=confidence)

    provider = ScriptedProvider(default=reply)
    live_agent = CascadeAgent(models=[CHEAP, STRONG], quality_config=JUDGE,
                              runtime=Runtime(resolve_provider=provider.resolver()))
    live = await live_agent.evaluate([(f"question {i}", row[0]) for i, row in enumerate(ROWS, start=1)])
    recorded_metrics = await evaluate_recorded(agent(), recorded)
    assert live.quality_source == "correctness" and len(provider.requests) == 8  # 5 drafts, 3 escalations
    for key in ("n", "drafter_acceptance", "avg_cost", "total_cost", "avg_quality", "baseline_cost",
                "escalation_rate", "failed", "scored"):
        assert getattr(live, key) == getattr(recorded_metrics, key), key


async def test_the_agent_evaluates_a_loaded_dataset_and_names_the_function_for_a_path(recorded):
    loaded = await agent().evaluate(load_dataset(recorded))
    assert loaded.total_cost_decimal == 5 * C + 3 * S and loaded.quality_source == "recorded_label"
    with pytest.raises(ConfigurationError, match=r"cascadeflow\.replay\.evaluate\(agent, path\)"):
        await agent().evaluate(recorded)


async def test_evaluate_accepts_the_path_of_a_recorded_file(recorded):
    by_path, by_str = await evaluate_recorded(agent(), recorded), await evaluate_recorded(agent(), str(recorded))
    assert by_path.total_cost_decimal == by_str.total_cost_decimal == 5 * C + 3 * S
    assert by_path.avg_quality == by_str.avg_quality == pytest.approx(3 / 5)


async def test_models_are_matched_by_name_and_priced_as_the_dataset_declares(tmp_path, recorded):
    # the agent names real models (priced by the price book); the recording declares its own prices for them
    header = json.loads(recorded.read_text(encoding="utf-8").splitlines()[0])
    header["models"]["cheap"]["name"], header["models"]["strong"]["name"] = "gpt-4o-mini", "gpt-4o"
    header["models"]["cheap"]["provider"] = header["models"]["strong"]["provider"] = "openai"
    renamed = tmp_path / "renamed.jsonl"
    renamed.write_text("\n".join([json.dumps(header), *recorded.read_text(encoding="utf-8").splitlines()[1:]])
                       + "\n", encoding="utf-8")
    real = CascadeAgent(models=[ModelConfig("gpt-4o-mini", provider="openai"), ModelConfig("gpt-4o")],
                        quality_config=JUDGE)
    metrics = await evaluate_recorded(real, renamed)
    assert metrics.total_cost_decimal == 5 * C + 3 * S
    assert [r.model_used for r in metrics.results][:2] == ["openai/gpt-4o-mini"] * 2


async def test_recorded_data_refuses_a_scorer(recorded):
    with pytest.raises(ConfigurationError, match="recorded labels"):
        await evaluate_recorded(agent(), recorded, scorer=lambda answer, expected: 1.0)


async def test_a_model_missing_from_the_dataset_is_named(recorded):
    other = CascadeAgent(models=[ModelConfig("gpt-4o-mini", provider="openai"), STRONG], quality_config=JUDGE,
                         allow_unordered=True)
    with pytest.raises(ConfigurationError, match="no model 'gpt-4o-mini'.*cheap, strong"):
        await evaluate_recorded(other, recorded)


async def test_an_agent_with_a_router_is_refused_on_recorded_data(recorded):
    class OneRoute:
        def route(self, request):
            return Route((CHEAP, STRONG), "fixed")

    with pytest.raises(ConfigurationError, match="router="):
        await evaluate_recorded(CascadeAgent(models=[CHEAP, STRONG], router=OneRoute()), recorded)
    with pytest.raises(ConfigurationError, match="speculative=True"):
        await evaluate_recorded(agent(speculative=True), recorded)


async def test_bad_recorded_files_fail_with_the_line(tmp_path):
    with pytest.raises(ReplayDataError, match="no such recorded-outcome file"):
        await evaluate_recorded(agent(), tmp_path / "missing.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(ReplayDataError, match="empty") as info:
        await evaluate_recorded(agent(), empty)
    assert info.value.line == 1
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(HEADER) + "\n" + json.dumps(
        {"id": "q1", "messages": [{"role": "user", "content": "x"}],
         "answers": {"cheap": answer("4", "yes"), "strong": answer("4", True)}}) + "\n", encoding="utf-8")
    with pytest.raises(ReplayDataError) as info:
        await evaluate_recorded(agent(), broken)
    assert info.value.line == 2


async def test_test_queries_of_the_wrong_type_are_refused():
    with pytest.raises(ConfigurationError, match="test queries"):
        await agent().evaluate(42)
    with pytest.raises(ConfigurationError, match="concurrency"):
        await agent().evaluate(["What is 2 + 2?"], concurrency=0)
