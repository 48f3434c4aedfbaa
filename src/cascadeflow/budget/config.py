"""Budget configuration (`BudgetConfig`, `UserBudget`) and the pure functions the runtime asks before a
call: which budgets apply (`charges_for`) and how close to its limit the tightest one is (`pressure`)."""

from __future__ import annotations

import inspect
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from decimal import ROUND_FLOOR, Decimal
from typing import Any, Literal

from cascadeflow.budget.ledger import BudgetState, Charge, check_key
from cascadeflow.budget.windows import (
    GLOBAL_SCOPE,
    Period,
    agent_scope,
    resolve_timezone,
    user_scope,
    window_key,
)
from cascadeflow.errors import ConfigurationError
from cascadeflow.pricing import usd_to_micro_limit

log = logging.getLogger(__name__)

AtLimit = Literal["stop", "cheapest_tier"]
Action = Literal["normal", "degrade", "stop", "cheapest_only"]


@dataclass(frozen=True, slots=True)
class UserBudget:
    """Daily and/or monthly limits in USD for one user (also used for agents): `UserBudget(daily=5.0,
    monthly=100.0)`. Windows are calendar days/months in the BudgetConfig's time zone.

    Given to a BudgetConfig, the ledger enforces it. Code that keeps its own account (e.g. in a CascadeAgent's
    `on_query_complete`) can also tally spend on it: `spend(cost)`, then `daily_remaining` /
    `monthly_remaining` (USD, negative once over; UTC calendar windows). That tally is in-process and
    advisory: it refuses nothing by itself.
    """

    daily: float | Decimal | None = None
    monthly: float | Decimal | None = None
    _spent: dict[str, Decimal] = field(default_factory=dict, init=False, repr=False, compare=False)
    _spent_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.daily is None and self.monthly is None:
            raise ConfigurationError("UserBudget needs daily= and/or monthly= (USD), e.g. UserBudget(daily=5.0)")
        for name in ("daily", "monthly"):
            value = getattr(self, name)
            if value is not None:
                usd_to_micro_limit(value, f"UserBudget.{name}")

    def spend(self, cost: float | Decimal, *, now: float | None = None) -> None:
        """Add `cost` USD to today's and this month's tally."""
        amount = Decimal(str(cost))
        if not amount.is_finite() or amount < 0:
            raise ConfigurationError(f"spend() takes a non-negative USD amount, got {cost!r}")
        moment = time.time() if now is None else now
        current = {window_key("tally", period, moment) for period in ("day", "month")}
        with self._spent_lock:
            for key in [k for k in self._spent if k not in current]:  # past windows: kept bounded
                del self._spent[key]
            for key in current:
                self._spent[key] = self._spent.get(key, Decimal(0)) + amount

    def _remaining(self, period: Literal["day", "month"], limit: float | Decimal | None) -> float | None:
        if limit is None:
            return None
        with self._spent_lock:
            spent = self._spent.get(window_key("tally", period, time.time()), Decimal(0))
        return float(Decimal(str(limit)) - spent)

    @property
    def daily_remaining(self) -> float | None:
        """USD left today in the `spend()` tally (None without a daily limit)."""
        return self._remaining("day", self.daily)

    @property
    def monthly_remaining(self) -> float | None:
        """USD left this month in the `spend()` tally (None without a monthly limit)."""
        return self._remaining("month", self.monthly)

    def limits_micro(self) -> list[tuple[Period, int]]:
        """[(period, limit in micro-USD)] for the windows this budget sets."""
        out: list[tuple[Period, int]] = []
        if self.daily is not None:
            out.append(("day", usd_to_micro_limit(self.daily, "UserBudget.daily")))
        if self.monthly is not None:
            out.append(("month", usd_to_micro_limit(self.monthly, "UserBudget.monthly")))
        return out


@dataclass(frozen=True)
class BudgetConfig:
    """Budgets shared by every call of a runtime.

    `daily_limit` / `monthly_limit`: the global budget in USD. `user_budgets` / `default_user_budget`:
    per user id; `agent_budgets`: per agent id. `grace_period`: the hard stop sits at limit × (1 + grace).
    `degrade_at`: share of a limit from which the runtime degrades (stricter drafts, cheaper tiers).
    `at_limit`: past the limit, "stop" refuses calls, "cheapest_tier" serves the cheapest tier only.
    `on_limit_exceeded`: called once per budget window and process when a limit is reached, with no
    argument or with the `Pressure`. `key_prefix` separates applications sharing one ledger.
    """

    daily_limit: float | Decimal | None = None
    monthly_limit: float | Decimal | None = None
    on_limit_exceeded: Callable[..., Any] | None = None
    grace_period: float = 0.0
    degrade_at: float = 0.8
    at_limit: AtLimit = "stop"
    timezone: str | tzinfo = "UTC"
    user_budgets: Mapping[str, UserBudget] = field(default_factory=dict)
    default_user_budget: UserBudget | None = None
    agent_budgets: Mapping[str, UserBudget] = field(default_factory=dict)
    lease_seconds: float = 300.0
    key_prefix: str = ""
    _fired: set[str] = field(default_factory=set, init=False, repr=False, compare=False)
    _fired_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("daily_limit", "monthly_limit"):
            if getattr(self, name) is not None:
                usd_to_micro_limit(getattr(self, name), f"BudgetConfig.{name}")
        _fraction(self.grace_period, "grace_period", low=0.0, high=10.0)
        _fraction(self.degrade_at, "degrade_at", low=0.0, high=1.0, open_low=True)
        if self.at_limit not in ("stop", "cheapest_tier"):
            raise ConfigurationError(f"at_limit must be 'stop' or 'cheapest_tier', got {self.at_limit!r}")
        resolve_timezone(self.timezone)
        if self.on_limit_exceeded is not None and not callable(self.on_limit_exceeded):
            raise ConfigurationError("on_limit_exceeded must be callable (a function of no argument or of the "
                                     "Pressure)")
        for kind, budgets in (("user_budgets", self.user_budgets), ("agent_budgets", self.agent_budgets)):
            for ident, budget in budgets.items():
                if not isinstance(budget, UserBudget):
                    raise ConfigurationError(f"{kind}[{ident!r}] must be a UserBudget(daily=..., monthly=...)")
        if self.default_user_budget is not None and not isinstance(self.default_user_budget, UserBudget):
            raise ConfigurationError("default_user_budget must be a UserBudget(daily=..., monthly=...)")
        if not isinstance(self.lease_seconds, (int, float)) or not math.isfinite(self.lease_seconds) \
                or self.lease_seconds <= 0:
            raise ConfigurationError(f"lease_seconds must be a positive number, got {self.lease_seconds!r}")
        if self.key_prefix:
            check_key(self.key_prefix)

    def hard_limit(self, limit_micro: int) -> int:
        """The limit a ledger enforces: limit × (1 + grace_period), rounded down."""
        grace = Decimal(str(self.grace_period))
        return int((Decimal(limit_micro) * (1 + grace)).to_integral_value(rounding=ROUND_FLOOR))

    def notify_limit(self, pressure: Pressure) -> bool:
        """Call `on_limit_exceeded` if `pressure` reached a limit whose window has not fired yet in this
        process (the key carries the window, so a new day fires again). Returns whether it fired."""
        if not pressure.limit_reached or pressure.key is None or self.on_limit_exceeded is None:
            return False
        return self._fire(pressure)

    def notify_refused(self, key: str, reason: str) -> bool:
        """Call `on_limit_exceeded` when the ledger refused a call on budget `key`: a call whose worst case
        does not fit is the first sign of the limit, before the spend reaches it. Once per window, as above."""
        if self.on_limit_exceeded is None:
            return False
        return self._fire(Pressure(action="stop", share=1.0, key=key, reason=f"call refused: {reason}"))

    def _fire(self, pressure: Pressure) -> bool:
        key, callback = str(pressure.key), self.on_limit_exceeded
        if callback is None:
            return False
        with self._fired_lock:
            if key in self._fired:
                return False
            self._fired.add(key)
        try:
            callback(pressure) if _takes_argument(callback) else callback()
        except Exception:  # the user's alert hook must not break the call it was fired from
            log.exception("on_limit_exceeded callback failed for %s", pressure.key)
        return True


@dataclass(frozen=True, slots=True, kw_only=True)
class Pressure:
    """How close the tightest applicable budget is to its limit, and what the runtime should do."""

    action: Action
    share: float  # (spent + reserved) / nominal limit of the tightest key; 0.0 when no budget applies
    key: str | None
    reason: str

    @property
    def limit_reached(self) -> bool:
        return self.share >= 1.0


def charges_for(config: BudgetConfig, user_budgets: Mapping[str, UserBudget] | None = None,
                user_id: str | None = None, agent_id: str | None = None,
                now: float | datetime | None = None) -> list[Charge]:
    """Every budget a call by (user_id, agent_id) at `now` is charged against, with grace applied.

    Per-user budgets come from `user_budgets` (the call's), else `config.user_budgets`, else
    `config.default_user_budget`. Keys carry their window: `user:alice:day:2026-11-24`."""
    moment = time.time() if now is None else now
    periods: tuple[tuple[Period, str, Any], ...] = (("day", "daily_limit", config.daily_limit),
                                                     ("month", "monthly_limit", config.monthly_limit))
    globals_ = [(p, usd_to_micro_limit(v, f"BudgetConfig.{n}")) for p, n, v in periods if v is not None]
    scopes: list[tuple[str, list[tuple[Period, int]]]] = [(GLOBAL_SCOPE, globals_)]
    if user_id is not None:
        budget = (user_budgets or {}).get(user_id) or config.user_budgets.get(user_id) \
            or config.default_user_budget
        if budget is not None:
            scopes.append((user_scope(user_id), budget.limits_micro()))
    if agent_id is not None:
        budget = config.agent_budgets.get(agent_id)
        if budget is not None:
            scopes.append((agent_scope(agent_id), budget.limits_micro()))
    prefix = f"{config.key_prefix}:" if config.key_prefix else ""
    return [Charge(prefix + window_key(scope, period, moment, config.timezone), config.hard_limit(limit))
            for scope, limits in scopes for period, limit in limits]


def pressure(config: BudgetConfig, charges: Sequence[Charge], states: Mapping[str, BudgetState]) -> Pressure:
    """The action for the tightest budget: normal below `degrade_at`, degrade up to the limit, then (within
    the grace band) cheapest-only or degrade, and at the hard limit stop or cheapest-only (`at_limit`)."""
    if not charges:
        return Pressure(action="normal", share=0.0, key=None, reason="no budget applies")
    widen = 1 + Decimal(str(config.grace_period))
    exact, key = max((_share(states.get(c.key), c.limit_micro, widen), c.key) for c in charges)
    share = float(exact)
    pct = f"{share:.0%} of {key}"
    cheapest = config.at_limit == "cheapest_tier"
    if exact >= widen:
        return Pressure(action="cheapest_only" if cheapest else "stop", share=share, key=key,
                        reason=f"{pct}: hard limit reached"
                               + (", serving the cheapest tier only" if cheapest else ""))
    if exact >= 1:
        if cheapest:
            return Pressure(action="cheapest_only", share=share, key=key,
                            reason=f"{pct}: limit reached, serving the cheapest tier only")
        return Pressure(action="degrade", share=share, key=key,
                        reason=f"{pct}: limit reached, within the grace period")
    if share >= config.degrade_at:
        return Pressure(action="degrade", share=share, key=key,
                        reason=f"{pct} (degrade at {config.degrade_at:.0%})")
    return Pressure(action="normal", share=share, key=key, reason=pct)


def _share(state: BudgetState | None, hard_limit: int, widen: Decimal) -> Decimal:
    # Decimal, so exactly reaching a limit reads as 1.0 rather than 0.999...
    used = (state.spent + state.reserved) if state is not None else 0
    return Decimal(used) * widen / Decimal(hard_limit)


def _fraction(value: object, what: str, *, low: float, high: float, open_low: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        and (value > low if open_low else value >= low) and value <= high
    if not ok:
        bound = f"{'>' if open_low else '>='} {low} and <= {high}"
        raise ConfigurationError(f"{what} must be a number {bound}, got {value!r}")


def _takes_argument(callback: Callable[..., Any]) -> bool:
    try:
        inspect.signature(callback).bind(None)
    except TypeError:
        return False
    except ValueError:  # builtins without a signature: assume the documented one-argument form
        return True
    return True
