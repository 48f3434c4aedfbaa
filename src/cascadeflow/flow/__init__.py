"""The `CascadeFlow` facade for single calls and `BudgetSession`, its spending limit over a block of calls.

Above the pipeline (runtime/), the cascade, the harness and the cache it puts together: a call is routed,
budgeted and sent through the harness's configured runtime, a list of models runs as a cascade.
"""

from cascadeflow.flow.client import CascadeFlow, CompletionResult
from cascadeflow.flow.session import BudgetSession

__all__ = ["BudgetSession", "CascadeFlow", "CompletionResult"]
