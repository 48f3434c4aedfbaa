"""`CascadeAgent.evaluate`: acceptance, average cost and average quality over a set of test queries."""

from __future__ import annotations

import asyncio
import re
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from cascadeflow.cascade.result import CascadeResult
from cascadeflow.errors import CascadeExhausted, ConfigurationError

if TYPE_CHECKING:
    from cascadeflow.cascade.agent import CascadeAgent

Scorer = Callable[[str, Any], "float | bool"]
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
    when test queries carry expected answers or a scorer — `quality_source="correctness"`; otherwise the
    validator's mean score of the returned answers — `quality_source="validator_score"` (None if no signal
    applied to any answer)."""

    n: int
    drafter_acceptance: float
    avg_cost: Decimal
    avg_quality: float | None
    quality_source: Literal["correctness", "validator_score"]
    total_cost: Decimal
    baseline_cost: Decimal
    savings_pct: float
    escalation_rate: float
    failed: int  # queries whose every tier failed (CascadeExhausted)
    scored: int  # queries that contributed to avg_quality
    results: list[CascadeResult] = field(default_factory=list)

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
        return TestQuery(query, item.get("expected", item.get("answer")), dict(item.get("metadata") or {}),
                         item.get("scorer"))
    raise ConfigurationError(f"test query {index}: expected a string, (query, expected), or a dict; "
                             f"got {type(item).__name__}")


def _score(result: CascadeResult, case: TestQuery, scorer: Scorer | None) -> float | None:
    fn = case.scorer or scorer
    if fn is not None:
        return float(fn(result.content, case.expected))
    if case.expected is not None:
        return default_correctness(result.content, case.expected)
    return None


async def evaluate(agent: CascadeAgent, test_queries: Sequence[Any], *, scorer: Scorer | None = None,
                   concurrency: int = 4) -> EvaluationMetrics:
    cases = [_coerce(item, i) for i, item in enumerate(test_queries)]
    if not cases:
        raise ConfigurationError("evaluate() needs at least one test query")
    if not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigurationError(f"concurrency must be a positive integer, got {concurrency!r}")
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
    if labelled:
        scores = [_score(r, c, scorer) if isinstance(r, CascadeResult) else 0.0
                  for c, r in zip(cases, results, strict=True)
                  if c.expected is not None or c.scorer is not None or scorer is not None]
        quality = [s for s in scores if s is not None]
    else:
        quality = [r.score for r in answered if r.score is not None]
    failed_cost = sum((t.cost for r in results if isinstance(r, CascadeExhausted) for t in r.attempts), Decimal(0))
    total = sum((r.total_cost for r in answered), Decimal(0)) + failed_cost
    base = sum((r.baseline_cost for r in answered), Decimal(0))
    n = len(cases)
    escalated = sum(1 for r in answered if not r.draft_accepted and len(r.tiers) > 1)
    return EvaluationMetrics(
        n=n, drafter_acceptance=sum(r.draft_accepted for r in answered) / n, avg_cost=total / n,
        avg_quality=statistics.fmean(quality) if quality else None,
        quality_source="correctness" if labelled else "validator_score",
        total_cost=total, baseline_cost=base, savings_pct=float((base - total) / base) if base > 0 else 0.0,
        escalation_rate=escalated / n, failed=n - len(answered), scored=len(quality), results=answered,
    )
