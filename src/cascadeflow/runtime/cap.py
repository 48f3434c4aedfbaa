"""The per-call cap: a request's worst-case cost, and its `max_tokens` lowered to fit what the call may still
spend (or a refusal before anything is sent). Pure arithmetic on the price book, apart from the decision the
call records when the cap changes or refuses the request."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from cascadeflow.errors import BudgetExceeded
from cascadeflow.messages import Request
from cascadeflow.models import ModelConfig
from cascadeflow.pricing import PriceBook, compute_seconds_bound, from_micro_usd
from cascadeflow.runtime.call import CallContext
from cascadeflow.tokens import estimate_input_tokens

DEFAULT_MAX_OUTPUT_TOKENS = 4096  # used when neither the call nor the ModelConfig sets a limit
MIN_USEFUL_OUTPUT_TOKENS = 64  # a per-call cap never shrinks max_tokens below this; it refuses instead
COMPUTE_STOP_MARGIN_S = 1.0  # a compute-priced call stops this long before its reserved time (last token)

Overflow = Literal["shrink", "raise"]


def estimate_worst_case(price_book: PriceBook, model: ModelConfig, request: Request,
                        max_tokens: int) -> tuple[int, Decimal]:
    """(input-token bound, worst-case cost) of sending `request` to `model` with `max_tokens`."""
    input_bound = estimate_input_tokens(request.messages, request.tools)
    return input_bound, price_book.worst_case(model, input_bound, max_tokens)


def max_tokens_for(model: ModelConfig, request: Request) -> int:
    if request.max_tokens is not None:
        return request.max_tokens
    return model.max_output_tokens or DEFAULT_MAX_OUTPUT_TOKENS


def fit_to_cap(price_book: PriceBook, model: ModelConfig, request: Request, call: CallContext, *,
               overflow: Overflow, min_useful_output_tokens: int,
               model_name: str | None = None) -> tuple[Request, int, Decimal | None]:
    """Apply the per-call cap: returns (request with max_tokens set, original max_tokens, worst case).
    `model_name`, when given, is set as the request's model in the same copy. The worst case is None when
    nothing here needed it (no per-call cap, not compute-priced): an attempt computes it only for a ledger
    reservation or a failed attempt, so an observed call with no budget never estimates tokens."""
    max_tokens = max_tokens_for(model, request)
    original = max_tokens
    worst: Decimal | None = None
    if call.budget_limit_micro is not None:
        input_bound, worst = estimate_worst_case(price_book, model, request, max_tokens)
        room = from_micro_usd(call.budget_limit_micro) - call.spent
        if worst > room:
            fitted = _largest_fitting(price_book, model, input_bound, room, max_tokens)
            if overflow == "raise" or fitted < min_useful_output_tokens:
                call.decide("stop", f"worst case ${worst:.6f} exceeds the per-call cap "
                                    f"(${room:.6f} left)", model_requested=model.id)
                raise BudgetExceeded("call would exceed its budget_limit", key=f"call:{call.request_id}",
                                     limit_usd=float(from_micro_usd(call.budget_limit_micro)),
                                     requested_usd=float(worst), remaining_usd=float(room))
            max_tokens = fitted
            worst = price_book.worst_case(model, input_bound, max_tokens)
            call.decide("switch_model", f"max_tokens lowered {original} -> {max_tokens} to fit the "
                                        f"per-call cap", model_requested=model.id, model_used=model.id)
    if price_book.rates(model).compute_per_hour is not None:
        # A compute-priced model costs machine time: the provider stops when the reserved time is used.
        input_bound, worst = estimate_worst_case(price_book, model, request, max_tokens)
        seconds = compute_seconds_bound(model, input_bound, max_tokens) - COMPUTE_STOP_MARGIN_S
        changes: dict[str, Any] = {"max_tokens": max_tokens, "max_compute_seconds": seconds}
    elif request.max_tokens == max_tokens and model_name in (None, request.model):
        return request, original, worst  # nothing changes (the usual attempt): no copy, no changes dict
    else:
        changes = {"max_tokens": max_tokens}
    if model_name is not None:
        changes["model"] = model_name
    return request.with_(**changes), original, worst


def _largest_fitting(price_book: PriceBook, model: ModelConfig, input_bound: int, room: Decimal,
                     upper: int) -> int:
    lo, hi = 0, upper
    while lo < hi:  # binary search: cost is monotone in max_tokens
        mid = (lo + hi + 1) // 2
        if price_book.worst_case(model, input_bound, mid) <= room:
            lo = mid
        else:
            hi = mid - 1
    return lo
