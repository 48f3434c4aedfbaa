"""What a cascade did on one query (`QueryOutcome`) and the totals of a run (`tally`): what live evaluation
(`CascadeAgent.evaluate`) and the replay reports both sum, so the two agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryOutcome:
    """What the engine did on one query: the final model, every model it called, cost and quality."""

    query_id: str
    final_model: str  # alias of the model whose answer was returned
    called: tuple[str, ...]  # aliases of every model called, in order
    cost_usd: Decimal
    quality: float
    scores: tuple[float | None, ...] = ()  # the validator score of each called tier
    signals: tuple[tuple[str, ...], ...] = ()
    reasons: tuple[str, ...] = ()  # each tier's verdict reason, as the engine wrote it
    refused: bool = False  # no answer: the budget refused the query (live evaluation: every tier failed)
    draft_accepted: bool = False  # a tier before the last one had its answer accepted (CascadeResult's flag)
    scored: bool = True  # `quality` counts (live evaluation without labels may have no score to count)


@dataclass(frozen=True, slots=True)
class Tally:
    """Totals of one run over n queries: what both `policy_point` and `agent.evaluate()` report from."""

    n: int
    cost: Decimal
    quality: float | None  # mean over the scored outcomes (None: none was scored)
    scored: int
    draft_accepted: int
    escalated: int  # answered by a later tier after the draft was called and not accepted
    refused: int


def tally(outcomes: Sequence[QueryOutcome]) -> Tally:
    """Sum one run's outcomes (in query order, so float sums are the same on every call)."""
    scored = [o.quality for o in outcomes if o.scored]
    return Tally(
        n=len(outcomes), cost=sum((o.cost_usd for o in outcomes), Decimal(0)),
        quality=sum(scored) / len(scored) if scored else None, scored=len(scored),
        draft_accepted=sum(1 for o in outcomes if o.draft_accepted),
        escalated=sum(1 for o in outcomes if not o.refused and not o.draft_accepted and len(o.called) > 1),
        refused=sum(1 for o in outcomes if o.refused))
