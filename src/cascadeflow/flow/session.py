"""`BudgetSession`: a spending limit over a block of calls, held on a ledger so it never overshoots.

    with BudgetSession(cf, limit=5.00) as session:
        session.complete(model=..., messages=...)   # raises BudgetExceeded *before* a call that could not fit

Every call made through the session (single models and every cascade tier) reserves its worst case
against the session's charge and settles to its actual cost.
"""

from __future__ import annotations

import uuid
from collections import Counter
from decimal import Decimal
from typing import Any, Self

from cascadeflow.errors import BudgetExceeded, ConfigurationError
from cascadeflow.flow.client import CascadeFlow, CompletionResult
from cascadeflow.pricing import from_micro_usd, usd_to_micro_limit
from cascadeflow.runtime.pipeline import Charge
from cascadeflow.sync import run_sync


class BudgetSession:
    """A cumulative USD limit over many `complete()` calls of one `CascadeFlow`, held on its ledger.

    Use it as a context manager; `session.complete(...)` takes the arguments of `CascadeFlow.complete` and
    raises `BudgetExceeded` before sending a call whose worst case no longer fits the remaining limit.
    """

    def __init__(self, cf: CascadeFlow, *, limit: float, session_id: str | None = None):
        if not isinstance(cf, CascadeFlow):
            raise ConfigurationError("BudgetSession needs a CascadeFlow instance as its first argument")
        self.cf = cf
        self.limit_micro = usd_to_micro_limit(limit, "BudgetSession limit")
        self.session_id = session_id or uuid.uuid4().hex[:12]
        self.charge = Charge(f"session:{self.session_id}", self.limit_micro)
        self.calls = 0
        self.refused = 0
        self._by_model: Counter[str] = Counter()
        self._cost_by_model: dict[str, Decimal] = {}
        self._ledger = None

    def _ledger_or_default(self):  # the runtime's ledger, or an in-process one for a session on its own
        if self._ledger is None:
            ledger = self.cf.runtime.ledger
            if ledger is None:
                from cascadeflow.budget import open_ledger

                ledger = open_ledger("memory://")
                self.cf.runtime.ledger = ledger
            self._ledger = ledger
        return self._ledger

    @property
    def limit(self) -> float:
        return float(from_micro_usd(self.limit_micro))

    @property
    def spent(self) -> float:
        return float(from_micro_usd(self._ledger_or_default().state(self.charge.key).spent))

    @property
    def remaining(self) -> float:
        return float(from_micro_usd(self._ledger_or_default().remaining(self.charge)))

    async def acomplete(self, model: Any = None, messages: Any = None, **kwargs: Any) -> CompletionResult:
        self._ledger_or_default()
        try:
            result = await self.cf.acomplete(model, messages, _charges=(self.charge,), **kwargs)
        except BudgetExceeded:
            self.refused += 1
            raise
        self.calls += 1
        self._by_model[result.model] += 1
        self._cost_by_model[result.model] = self._cost_by_model.get(result.model, Decimal(0)) + result.cost_decimal
        return result

    def complete(self, model: Any = None, messages: Any = None, **kwargs: Any) -> CompletionResult:
        return run_sync(self.acomplete(model, messages, **kwargs), what="BudgetSession.complete()")

    def summary(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id, "limit": self.limit, "spent": self.spent,
            "remaining": self.remaining, "calls": self.calls, "refused": self.refused,
            "calls_by_model": dict(self._by_model),
            "cost_by_model": {m: float(c) for m, c in self._cost_by_model.items()},
        }

    def __enter__(self) -> Self:
        self._ledger_or_default()
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    async def __aenter__(self) -> Self:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        return None
