"""Tier arithmetic: cheap-to-expensive ordering checked against the price book, per-tier records, baseline."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from cascadeflow.cascade.result import Decision, TierAttempt
from cascadeflow.errors import ConfigurationError
from cascadeflow.messages import Response, Usage
from cascadeflow.models import ModelConfig
from cascadeflow.pricing import PriceBook, Rates
from cascadeflow.runtime.pipeline import AttemptRecord


def blended_price(rates: Rates) -> Decimal | None:
    """USD per million tokens for an even input/output mix; None when priced by machine time (not comparable)."""
    if rates.compute_per_hour is not None:
        return None
    return rates.input + rates.output


def check_tier_order(tiers: Sequence[ModelConfig], price_book: PriceBook, *, allow_unordered: bool,
                     where: str = "models") -> None:
    """Raise ConfigurationError when a tier is priced above the next one (unless allow_unordered).

    Prices come from the price book, so an unpriceable model fails here, before any request is sent.
    """
    if not tiers:
        raise ConfigurationError(f"{where} is empty: give at least one ModelConfig, cheapest first")
    prices = [blended_price(price_book.rates(cfg)) for cfg in tiers]
    if allow_unordered:
        return
    for i in range(len(tiers) - 1):
        here, nxt = prices[i], prices[i + 1]
        if here is not None and nxt is not None and here > nxt:
            raise ConfigurationError(
                f"{where}: tiers must go from cheap to expensive, but {tiers[i].id} (${here}/M tokens in+out) "
                f"is priced above the next tier {tiers[i + 1].id} (${nxt}/M); reorder the list or pass "
                f"allow_unordered=True if this order is intended")


def tier_attempt(record: AttemptRecord | None, *, tier: int, model: str, decision: Decision, reason: str,
                 score: float | None = None, signals: tuple[str, ...] = (), error: str | None = None,
                 speculative: bool = False) -> TierAttempt:
    """A TierAttempt from the runtime's AttemptRecord (cost, tokens, latency come from the pipeline)."""
    if record is None:
        return TierAttempt(tier=tier, model=model, decision=decision, reason=reason, score=score,
                           signals=signals, error=error, speculative=speculative)
    # record.model is what was actually sent: a policy may have switched the tier's model
    return TierAttempt(
        tier=tier, model=record.model, decision=decision, reason=reason, score=score, signals=signals,
        input_tokens=record.input_tokens, output_tokens=record.output_tokens, cost_decimal=record.cost,
        latency_ms=record.latency_ms, error=error if error is not None else record.error, speculative=speculative,
    )


def baseline(top: ModelConfig, attempts: Sequence[TierAttempt], answer: Response,
             price_book: PriceBook) -> tuple[Decimal, bool]:
    """(cost had `top` answered directly, estimated?) — the actual cost when `top` answered."""
    for attempt in attempts:
        # a speculative answer that finished and was discarded still tells what the top tier costs
        answered = attempt.decision != "cancelled" or attempt.output_tokens > 0
        if attempt.model == top.id and attempt.decision != "error" and attempt.error is None and answered:
            return attempt.cost_decimal, False
    usage = Usage(input_tokens=answer.usage.input_tokens, output_tokens=answer.usage.output_tokens,
                  cache_read_tokens=answer.usage.cache_read_tokens, estimated=True)
    return price_book.cost(top, usage, latency_s=answer.latency_ms / 1000), True
