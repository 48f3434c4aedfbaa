"""`CascadeAgent.evaluate`: acceptance, average cost and average quality over live test queries.

Live queries go through the real agent pipeline and are summed by `tally`. Recorded data evaluates itself
(`ReplayDataset.evaluate_agent`, in `cascadeflow.replay`, which sits above the cascade and is never imported
from here), with the same `tally`, so evaluate() and `cascadeflow replay` agree.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from os import PathLike
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from cascadeflow.cascade.outcomes import QueryOutcome, tally
from cascadeflow.cascade.result import CascadeResult
from cascadeflow.errors import CascadeExhausted, ConfigurationError

if TYPE_CHECKING:
    from cascadeflow.cascade.agent import CascadeAgent

Scorer = Callable[[str, Any], "float | bool"]
QualitySource = Literal["correctness", "validator_score", "recorded_label"]
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


@dataclass(slots=True)
class TestQuery:
    query: Any
    expected: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)
    scorer: Scorer | None = None

    __test__ = False  # not a pytest test class


@dataclass(slots=True)
class EvaluationMetrics:
    """`avg_quality` is correctness (share of answers matching the expected answer, or the scorer's mean)
    when test queries carry expected answers or a scorer — `quality_source="correctness"`; the mean recorded
    label (or scaled score) of the returned answers on recorded data — `"recorded_label"`; otherwise the
    validator's mean score of the returned answers — `quality_source="validator_score"` (None if no signal
    applied to any answer). On recorded data `point` is the operating point `cascadeflow replay` reports
    (cost and quality as shares of strong-only, gap recovered) and `baseline_cost` the recorded strong-only
    cost. Costs are float USD; the exact sums are `total_cost_decimal` and `baseline_cost_decimal`."""

    n: int
    drafter_acceptance: float
    avg_cost: float
    avg_quality: float | None
    quality_source: QualitySource
    total_cost: float
    baseline_cost: float
    savings_pct: float
    escalation_rate: float
    failed: int  # queries whose every tier failed (CascadeExhausted)
    scored: int  # queries that contributed to avg_quality
    results: list[CascadeResult] = field(default_factory=list)
    outcomes: list[QueryOutcome] = field(default_factory=list)  # per query, in input order
    point: Any = None  # recorded data only: the replay report's OperatingPoint
    total_cost_decimal: Decimal = Decimal(0)
    baseline_cost_decimal: Decimal = Decimal(0)

    @property
    def acceptance_rate(self) -> float:
        return self.drafter_acceptance


def default_correctness(answer: str, expected: Any) -> float:
    """1.0 when the answer matches: numerically (the last number in the answer) for numeric expectations,
    otherwise the expected text appears in the answer (case- and whitespace-insensitive)."""
    want = str(expected).strip()
    try:
        target = float(want.replace(",", "").lstrip("#").strip())
    except ValueError:
        target = None
    if target is not None:
        numbers = _NUMBER.findall(answer)
        return float(bool(numbers) and abs(float(numbers[-1].replace(",", "")) - target) < 1e-6)
    squash = " ".join(want.lower().split())
    return float(bool(squash) and squash in " ".join(answer.lower().split()))


def _coerce(item: Any, index: int) -> TestQuery:
    if isinstance(item, TestQuery):
        return item
    if isinstance(item, (str, list)):
        return TestQuery(item)
    if isinstance(item, tuple) and len(item) == 2:
        return TestQuery(item[0], item[1])
    if isinstance(item, Mapping):
        query = item.get("query", item.get("prompt", item.get("messages")))
        if query is None:
            raise ConfigurationError(f"test query {index}: a dict needs 'query' (or 'prompt'/'messages')")
        return TestQuery(query=query, expected=item.get("expected", item.get("answer")),
                         metadata=dict(item.get("metadata") or {}), scorer=item.get("scorer"))
    raise ConfigurationError(f"test query {index}: expected a string, (query, expected), or a dict; "
                             f"got {type(item).__name__}")


def _score(result: CascadeResult, case: TestQuery, scorer: Scorer | None) -> float | None:
    fn = case.scorer or scorer
    if fn is not None:
        return float(fn(result.content, case.expected))
    if case.expected is not None:
        return default_correctness(result.content, case.expected)
    return None


def _live_outcome(index: int, case: TestQuery, result: CascadeResult | CascadeExhausted, labelled: bool,
                  scorer: Scorer | None) -> QueryOutcome:
    """One live run as the per-query outcome the shared tally sums (a failed run: no answer, wrong if labelled)."""
    if isinstance(result, CascadeExhausted):
        scored = labelled and (case.expected is not None or case.scorer is not None or scorer is not None)
        return QueryOutcome(query_id=str(index), final_model="", called=tuple(t.model for t in result.attempts),
                            cost_usd=sum((t.cost_decimal for t in result.attempts), Decimal(0)), quality=0.0,
                            refused=True, scored=scored)
    quality = _score(result, case, scorer) if labelled else result.score
    return QueryOutcome(query_id=str(index), final_model=result.model_used,
                        called=tuple(t.model for t in result.tiers), cost_usd=result.total_cost_decimal,
                        quality=quality if quality is not None else 0.0,
                        scores=tuple(t.score for t in result.tiers),
                        signals=tuple(t.signals for t in result.tiers),
                        reasons=tuple(t.reason for t in result.tiers), draft_accepted=result.draft_accepted,
                        scored=quality is not None)


@runtime_checkable
class RecordedData(Protocol):
    """Recorded data that can evaluate an agent over itself (`cascadeflow.replay.ReplayDataset`)."""

    async def evaluate_agent(self, agent: CascadeAgent, *, concurrency: int) -> EvaluationMetrics: ...


def metrics_of(outcomes: list[QueryOutcome], baseline: Decimal, source: QualitySource,
               results: list[CascadeResult], point: Any = None) -> EvaluationMetrics:
    """The metrics of one evaluation run (live or recorded) from its per-query outcomes."""
    totals = tally(outcomes)
    n = totals.n
    return EvaluationMetrics(
        n=n, drafter_acceptance=totals.draft_accepted / n, avg_cost=float(totals.cost / n),
        avg_quality=totals.quality, quality_source=source, total_cost=float(totals.cost), baseline_cost=float(baseline),
        savings_pct=float((baseline - totals.cost) / baseline) if baseline > 0 else 0.0,
        escalation_rate=totals.escalated / n, failed=totals.refused, scored=totals.scored, results=results,
        outcomes=outcomes, point=point, total_cost_decimal=totals.cost, baseline_cost_decimal=baseline)


def check_concurrency(concurrency: Any) -> None:
    if not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigurationError(f"concurrency must be a positive integer, got {concurrency!r}")


def refuse_scorer(scorer: Scorer | None) -> None:
    if scorer is not None:
        raise ConfigurationError("scorer= applies to live test queries; recorded data is scored from its "
                                 "recorded labels (drop scorer=, or pass test queries instead)")


async def evaluate(agent: CascadeAgent, test_queries: Sequence[Any] | RecordedData, *,
                   scorer: Scorer | None = None, concurrency: int = 4) -> EvaluationMetrics:
    """Live test queries through the agent; or, given recorded data (a ReplayDataset), the agent's cascade
    over the recorded answers through the replay engine, scored from the recorded labels."""
    check_concurrency(concurrency)
    if isinstance(test_queries, RecordedData):
        refuse_scorer(scorer)
        return await test_queries.evaluate_agent(agent, concurrency=concurrency)
    if isinstance(test_queries, (str, PathLike)):
        raise ConfigurationError(f"evaluate() takes test queries or a ReplayDataset, got the path "
                                 f"{str(test_queries)!r}; load it with cascadeflow.replay.load_dataset(path), "
                                 "or call cascadeflow.replay.evaluate(agent, path)")
    if not isinstance(test_queries, Iterable):
        raise ConfigurationError(f"evaluate() takes a list of test queries, a ReplayDataset or the path of a "
                                 f"recorded-outcome file; got {type(test_queries).__name__}")
    cases = [_coerce(item, i) for i, item in enumerate(test_queries)]
    if not cases:
        raise ConfigurationError("evaluate() needs at least one test query")
    labelled = scorer is not None or any(c.expected is not None or c.scorer is not None for c in cases)
    gate = asyncio.Semaphore(concurrency)

    async def one(case: TestQuery) -> CascadeResult | CascadeExhausted:
        async with gate:
            try:
                return await agent.run(case.query, metadata=case.metadata)
            except CascadeExhausted as exc:  # counted as a failure (and as wrong), not fatal to the evaluation
                return exc

    results = await asyncio.gather(*(one(c) for c in cases))
    answered = [r for r in results if isinstance(r, CascadeResult)]
    outcomes = [_live_outcome(i, c, r, labelled, scorer) for i, (c, r) in enumerate(zip(cases, results, strict=True))]
    return metrics_of(outcomes, sum((r.baseline_cost_decimal for r in answered), Decimal(0)),
                    "correctness" if labelled else "validator_score", answered)
