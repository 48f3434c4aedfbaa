"""Evaluating an agent on recorded data: its cascade over the recorded answers through the replay engine,
scored from the recorded labels, reported with the live evaluation's metrics (`EvaluationMetrics`).
"""

from __future__ import annotations

from os import PathLike
from typing import Any

from cascadeflow.cascade.agent import CascadeAgent
from cascadeflow.cascade.evaluation import EvaluationMetrics, check_concurrency, metrics_of, refuse_scorer
from cascadeflow.replay.engine import ReplaySetup, run_agent, score_results
from cascadeflow.replay.format import ReplayDataset, coerce_dataset
from cascadeflow.replay.report import policy_point, reference


async def evaluate(agent: CascadeAgent, data: ReplayDataset | str | PathLike[str], *, scorer: Any = None,
                   concurrency: int = 4) -> EvaluationMetrics:
    """`agent.evaluate(dataset)`, also given the path of a recorded-outcome file."""
    check_concurrency(concurrency)
    refuse_scorer(scorer)
    dataset = coerce_dataset(data)
    setup = ReplaySetup.for_agent(agent, dataset, concurrency=concurrency)
    results = await run_agent(setup)
    outcomes = score_results(setup, results)
    ref = reference(dataset, setup.models[0], setup.models[-1], setup.price_book)
    point = policy_point("evaluate", ref, outcomes, threshold=setup.quality.threshold)
    return metrics_of(outcomes, ref.strong_total, "recorded_label", results, point)
