"""Turn configured budgets (BudgetConfig, UserBudget) into the CallOptions of one call.

Which keys a call is charged against, and what budget pressure asks for near a limit: a lower acceptance
bar (more drafts accepted, fewer expensive escalations) or the cheapest tier only. Shared by CascadeFlow
and CascadeAgent so both honour `budget_config=` the same way.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from cascadeflow.errors import BudgetExceeded, ConfigurationError
from cascadeflow.runtime.pipeline import CALL_OPTIONS, CallOptions, Charge

# Near a limit (BudgetConfig.degrade_at) the cascade's acceptance threshold moves by this much: drafts are
# accepted more readily, so fewer calls escalate to expensive tiers. Recorded as a switch_model decision.
DEGRADE_RAISE_BAR = -0.15


def budget_call_options(config: Any, ledger: Any, *, user_budgets: Mapping[str, Any] | None = None,
                        user_id: str | None = None, agent_id: str | None = None) -> CallOptions:
    """The charges of every configured budget for (user, agent) now, and the pressure-driven degradation."""
    if config is None:
        return CallOptions()
    from cascadeflow.budget import charges_for, pressure

    if ledger is None:
        raise ConfigurationError("budgets are configured but the runtime has no ledger; pass ledger= "
                                 "(e.g. 'sqlite:///budget.db') or call cascadeflow.init(ledger_url=...)")
    clock = getattr(ledger, "clock", None)  # windows follow the ledger's (injectable) clock
    charges = charges_for(config, user_budgets, user_id=user_id, agent_id=agent_id,
                          now=clock() if clock is not None else None)
    states = ledger.states([c.key for c in charges]) if charges else {}
    found = pressure(config, charges, states)
    config.notify_limit(found)
    return CallOptions(charges=tuple(charges),
                       raise_bar=DEGRADE_RAISE_BAR if found.action == "degrade" else 0.0,
                       cheapest_only=found.action == "cheapest_only",
                       reason=found.reason if found.action != "normal" else "")


@contextmanager
def refusals_reported(config: Any, options: CallOptions) -> Iterator[None]:
    """Tell `config.on_limit_exceeded` when a configured budget refuses a call inside the block (the
    refusal is re-raised): the first refusal is news even while the spend is still below the limit."""
    try:
        yield
    except BudgetExceeded as exc:
        if config is not None and exc.key is not None and exc.key in {c.key for c in options.charges}:
            config.notify_refused(exc.key, str(exc))
        raise


@contextmanager
def call_options(options: CallOptions, *, budget_limit_micro: int | None = None,
                 extra_charges: Sequence[Charge] = ()) -> Iterator[CallOptions]:
    """Make `options` (merged with any enclosing ones) apply to the calls made inside the block."""
    outer = CALL_OPTIONS.get()
    limits = [v for v in (budget_limit_micro, options.budget_limit_micro, outer.budget_limit_micro if outer else None)
              if v is not None]
    merged = CallOptions(
        budget_limit_micro=limits[0] if limits else None,
        charges=tuple(options.charges) + tuple(extra_charges) + (tuple(outer.charges) if outer else ()),
        raise_bar=min(options.raise_bar, outer.raise_bar) if outer else options.raise_bar,
        cheapest_only=options.cheapest_only or bool(outer and outer.cheapest_only),
        reason=options.reason or (outer.reason if outer else ""),
    )
    token = CALL_OPTIONS.set(merged)
    try:
        yield merged
    finally:
        CALL_OPTIONS.reset(token)
