"""Budgets that never overshoot: ledgers (reserve / settle / lease), windows, configuration, deferred queue."""

from cascadeflow.budget.backends import open_ledger
from cascadeflow.budget.config import BudgetConfig, Pressure, UserBudget, charges_for, pressure
from cascadeflow.budget.ledger import BaseLedger, BudgetState, Reservation, Settlement
from cascadeflow.budget.queue import DeferredItem, DeferredQueue, DrainReport
from cascadeflow.budget.windows import resolve_timezone, window_key

__all__ = [
    "BaseLedger",
    "BudgetConfig",
    "BudgetState",
    "DeferredItem",
    "DeferredQueue",
    "DrainReport",
    "Pressure",
    "Reservation",
    "Settlement",
    "UserBudget",
    "charges_for",
    "open_ledger",
    "pressure",
    "resolve_timezone",
    "window_key",
]
