"""The replay engine: runs the real `CascadeAgent` over recorded answers and scores what it returned.

Every query goes through the whole pipeline (routing, validation, reservations, pricing, audit) with a
`ReplayProvider` as the transport; only the model answers come from the record. A threshold sweep runs the
engine once per threshold (`sweep`), or, for a two-tier cascade, twice in all (`sweep_recorded`): the draft
verdict does not depend on the threshold, so one run at threshold 0 (which drafts are acceptable at all) and
one at threshold 1 (every draft's score, and the strong tier's cost) decide every threshold in between.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from cascadeflow.cascade.agent import CascadeAgent
from cascadeflow.cascade.quality import QualityConfig
from cascadeflow.cascade.result import CascadeResult
from cascadeflow.errors import BudgetExceeded, ConfigurationError
from cascadeflow.pricing import PriceBook, from_micro_usd, to_micro_usd, usd_to_micro_limit
from cascadeflow.replay.format import ReplayDataset
from cascadeflow.replay.provider import REPLAY_ID, ReplayProvider
from cascadeflow.replay.report import QueryOutcome
from cascadeflow.runtime.pipeline import CALL_OPTIONS, CallOptions, Charge, Ledger, Runtime, Sink
from cascadeflow.sync import run_sync

Progress = Callable[[int], None]  # called with the number of queries just finished


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplaySetup:
    """Which dataset models form the cascade (cheapest first), and how drafts are judged."""

    dataset: ReplayDataset
    models: tuple[str, ...]  # aliases
    quality: QualityConfig
    price_book: PriceBook
    sinks: tuple[Sink, ...] = ()
    concurrency: int = 16
    budget_usd: Decimal | None = None  # one budget over the whole replay, spent in query order

    @classmethod
    def build(cls, dataset: ReplayDataset, models: Sequence[str], quality: QualityConfig | None = None, *,
              price_book: PriceBook | None = None, sinks: Sequence[Sink] = (), concurrency: int = 16,
              budget_usd: float | Decimal | None = None) -> ReplaySetup:
        if len(models) < 1:
            raise ConfigurationError("give at least one model (cheapest first), e.g. --models cheap,strong")
        aliases = tuple(dataset.model(m)[0] for m in models)
        if len(set(aliases)) != len(aliases):
            raise ConfigurationError(f"a model appears twice in {list(models)}")
        budget = None if budget_usd is None else from_micro_usd(usd_to_micro_limit(budget_usd, "budget"))
        return cls(dataset=dataset, models=aliases, quality=quality or QualityConfig(),
                   price_book=price_book or PriceBook(), sinks=tuple(sinks), concurrency=concurrency,
                   budget_usd=budget)

    @classmethod
    def for_agent(cls, agent: CascadeAgent, dataset: ReplayDataset, *, concurrency: int = 16) -> ReplaySetup:
        """The agent's own tiers (`models=`, matched to dataset models by id or name), quality config and
        price book over `dataset`. The agent's ledger and sinks are not used: a replay spends nothing."""
        unsupported = [name for name, on in (("router=", agent.router is not None),
                                              ("domain_config=", agent.domain_config is not None),
                                              ("complexity_router=", agent.complexity_router is not None),
                                              ("speculative=True", agent.speculative)) if on]
        if unsupported:
            raise ConfigurationError(f"replaying recorded data runs the agent's models= cascade with its "
                                     f"quality_config; this agent also uses {', '.join(unsupported)}, which the "
                                     f"replay does not reproduce: evaluate an agent built without it")
        if not agent.models:
            raise ConfigurationError("replaying recorded data needs an agent with models=[...] (cheapest first)")
        names = []
        for cfg in agent.models:
            try:
                names.append(dataset.model(cfg.id)[0])
            except ConfigurationError:
                names.append(dataset.model(cfg.name)[0])  # raises naming the dataset's models
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigurationError(f"concurrency must be a positive integer, got {concurrency!r}")
        return cls.build(dataset, names, agent.quality_config, price_book=agent.runtime.price_book,
                         concurrency=concurrency)

    def with_threshold(self, threshold: float) -> ReplaySetup:
        return replace(self, quality=self.quality.with_(threshold=threshold))

    def agent(self, ledger: Ledger | None = None) -> CascadeAgent:
        provider = ReplayProvider(self.dataset)
        runtime = Runtime(price_book=self.price_book, sinks=self.sinks, resolve_provider=provider.resolver(),
                          ledger=ledger)
        return CascadeAgent(models=[self.dataset.models[a] for a in self.models], quality_config=self.quality,
                            runtime=runtime, name=f"replay:{self.dataset.name}")


def _outcome(setup: ReplaySetup, query_index: int, result: CascadeResult) -> QueryOutcome:
    alias_of = {setup.dataset.models[a].id: a for a in setup.models}
    query = setup.dataset.queries[query_index]
    final = alias_of[result.model_used]
    called = tuple(alias_of[t.model] for t in result.tiers)
    # the recorded label is for the whole answer: one cut at max_tokens is not credited with it
    cut = result.response is not None and result.response.finish_reason == "length" \
        and query.answers[final].finish_reason != "length"
    quality = 0.0 if cut else query.answers[final].quality
    return QueryOutcome(query_id=query.id, final_model=final, called=called,
                        cost_usd=result.total_cost_decimal, quality=quality,
                        scores=tuple(t.score for t in result.tiers),
                        signals=tuple(t.signals for t in result.tiers),
                        reasons=tuple(t.reason for t in result.tiers), draft_accepted=result.draft_accepted)


def score_results(setup: ReplaySetup, results: Sequence[CascadeResult]) -> list[QueryOutcome]:
    """Score an engine run (results in the dataset's query order) from the recorded labels."""
    return [_outcome(setup, i, r) for i, r in enumerate(results)]


async def run_agent(setup: ReplaySetup, *, progress: Progress | None = None) -> list[CascadeResult]:
    """Every query of the dataset through one real CascadeAgent; results in query order."""
    if setup.budget_usd is not None:
        raise ConfigurationError("a replay with a budget can refuse queries: use replay(), which records them")
    agent = setup.agent()
    gate = asyncio.Semaphore(setup.concurrency)

    async def one(index: int) -> CascadeResult:
        query = setup.dataset.queries[index]
        async with gate:
            result = await agent.run(list(query.messages), metadata={REPLAY_ID: query.id})
        if progress is not None:
            progress(1)
        return result

    return list(await asyncio.gather(*(one(i) for i in range(len(setup.dataset.queries)))))


async def replay(setup: ReplaySetup, *, progress: Progress | None = None) -> list[QueryOutcome]:
    """Run the engine once over the dataset and score the returned answers from the recorded labels."""
    if setup.budget_usd is not None:
        return await _replay_with_budget(setup, progress)
    return score_results(setup, await run_agent(setup, progress=progress))


async def _replay_with_budget(setup: ReplaySetup, progress: Progress | None) -> list[QueryOutcome]:
    """Queries one after another (the order decides who runs out) under one ledger-enforced budget. A query
    the pipeline refuses has no answer (quality 0); what its earlier tiers spent is read from the ledger."""
    from cascadeflow.budget.backends.memory import MemoryLedger

    ledger = MemoryLedger()
    charge = Charge("replay:budget", to_micro_usd(setup.budget_usd or 0))
    agent = setup.agent(ledger)
    outcomes = []
    token = CALL_OPTIONS.set(CallOptions(charges=(charge,), reason="replay budget"))
    try:
        for index, query in enumerate(setup.dataset.queries):
            before = ledger.state(charge.key).spent
            try:
                result = await agent.run(list(query.messages), metadata={REPLAY_ID: query.id})
                outcomes.append(_outcome(setup, index, result))
            except BudgetExceeded as exc:
                spent = from_micro_usd(ledger.state(charge.key).spent - before)
                outcomes.append(QueryOutcome(query_id=query.id, final_model="", called=(), cost_usd=spent,
                                             quality=0.0, reasons=(f"refused: {exc}",), refused=True))
            if progress is not None:
                progress(1)
    finally:
        CALL_OPTIONS.reset(token)
    return outcomes


def replay_sync(setup: ReplaySetup) -> list[QueryOutcome]:
    """The synchronous twin of `replay` (refused inside a running event loop)."""
    return run_sync(replay(setup), what="replay_sync")


async def sweep(setup: ReplaySetup, thresholds: Sequence[float], *,
                progress: Progress | None = None) -> dict[float, list[QueryOutcome]]:
    """A real engine run per threshold."""
    out = {}
    for threshold in thresholds:
        out[threshold] = await replay(setup.with_threshold(threshold), progress=progress)
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class DraftVerdicts:
    """Per query, from two real engine runs of a two-tier cascade: can the draft be accepted at all, its
    score, and the outcome when accepted / when escalated."""

    acceptable: tuple[bool, ...]
    scores: tuple[float, ...]
    accepted: tuple[QueryOutcome, ...]
    escalated: tuple[QueryOutcome, ...]

    def at(self, threshold: float) -> list[QueryOutcome]:
        return [acc if ok and score >= threshold else esc
                for ok, score, acc, esc in zip(self.acceptable, self.scores, self.accepted, self.escalated,
                                               strict=True)]


async def record_verdicts(setup: ReplaySetup, *, progress: Progress | None = None) -> DraftVerdicts:
    """Two real engine runs (threshold 0 and 1) that decide a two-tier cascade at every threshold."""
    if len(setup.models) != 2:
        raise ConfigurationError("recorded sweeps need exactly two tiers; use sweep() for longer cascades")
    if setup.quality.thresholds_by_complexity:
        raise ConfigurationError("recorded sweeps need one threshold, not thresholds_by_complexity")
    if setup.budget_usd is not None:
        raise ConfigurationError("recorded sweeps cannot replay a budget (it changes outcomes); use sweep()")
    lenient = await replay(setup.with_threshold(0.0), progress=progress)
    strict = await replay(setup.with_threshold(1.0), progress=progress)
    acceptable, scores, accepted, escalated = [], [], [], []
    for low, high in zip(lenient, strict, strict=True):
        ok = low.final_model == setup.models[0]
        acceptable.append(ok)
        scores.append(low.scores[0] if low.scores[0] is not None else 0.0)
        accepted.append(low if ok else high)
        escalated.append(high)  # a draft accepted even at threshold 1 is never escalated in [0, 1]
    return DraftVerdicts(acceptable=tuple(acceptable), scores=tuple(scores), accepted=tuple(accepted),
                         escalated=tuple(escalated))


def sweep_recorded(verdicts: DraftVerdicts, thresholds: Sequence[float] | None = None
                   ) -> dict[float, list[QueryOutcome]]:
    """Outcomes per threshold; by default at every distinct draft score (the exact cost/quality frontier)."""
    if thresholds is None:
        thresholds = sorted({0.0, 1.0, *verdicts.scores})
    return {t: verdicts.at(t) for t in thresholds}


def total_cost(outcomes: Sequence[QueryOutcome]) -> Decimal:
    return sum((o.cost_usd for o in outcomes), Decimal(0))


async def fit_calibration(setup: ReplaySetup, *, l2: float = 1.0):  # type: ignore[no-untyped-def]
    """Fit the draft tier's Calibration on this (calibration) dataset: each recorded draft's validator signals,
    as the engine's QualityConfig computes them, against the draft's recorded label."""
    from cascadeflow.cascade.calibration import Calibration
    from cascadeflow.cascade.quality import collect_signals
    from cascadeflow.messages import build_request

    provider = ReplayProvider(setup.dataset)
    draft = setup.dataset.models[setup.models[0]]
    rows = []
    for query in setup.dataset.queries:
        request = build_request(list(query.messages), model=draft.name, metadata={REPLAY_ID: query.id})
        response = await provider.complete(request)
        rows.append((collect_signals(request, response, setup.quality),
                     query.answers[setup.models[0]].quality >= 0.5))
    return Calibration.fit(rows, l2=l2, meta={"dataset": setup.dataset.name, "draft": draft.id})


def with_calibration(setup: ReplaySetup, calibration) -> ReplaySetup:  # type: ignore[no-untyped-def]
    return replace(setup, quality=setup.quality.with_(calibration=calibration))
