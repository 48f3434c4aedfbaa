"""What "all premium" would have cost, defined once: every model call of an investigation answered by the
run's premium model directly, the call's prompt tokens counted once and the answer's tokens, at that
model's price. A cascade's draft and verifier are one call here: the premium model would have answered
the prompt once. The cost event (and so the cost panel and the snapshot) and the storm's summary all
price it here, from the same attempts (a call's `tiers`, as the audit log records them)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from cascadeflow import ModelConfig, PriceBook, Usage


def call_premium_cost(attempts: Sequence[Mapping[str, Any]], premium: ModelConfig, price_book: PriceBook
                      ) -> Decimal:
    """One call answered by `premium` directly: the answering attempt's prompt and answer tokens at its
    rates (the premium model's own answer might have been longer or shorter; nothing can say). A call no
    attempt answered costs nothing here: there is no answer to compare. A compute-priced premium model is
    priced by the answering attempt's time."""
    answered = [a for a in attempts if isinstance(a, Mapping) and a.get("status", "ok") == "ok"]
    if not answered:
        return Decimal(0)
    answer = answered[-1]
    usage = Usage(input_tokens=int(answer.get("input_tokens") or 0),
                  output_tokens=int(answer.get("output_tokens") or 0))
    return price_book.cost(premium, usage, latency_s=float(answer.get("latency_ms") or 0.0) / 1000)


def all_premium_cost(records: Iterable[Mapping[str, Any]], premium: ModelConfig, price_book: PriceBook) -> Decimal:
    """Every audited call (each record's `tiers`) answered by `premium` directly."""
    return sum((call_premium_cost(record.get("tiers") or [], premium, price_book) for record in records),
               Decimal(0))
