"""Run scopes: `run()` (a context manager) and `@agent` (a decorator) open a RunScope that every call made
inside it is charged to, traced in, and governed by (budget, tool cap, compliance, KPI weights).

A scope lives in the `CURRENT_SCOPE` context variable, so it follows asyncio tasks automatically and
threads started with `spawn_thread` / `ContextThreadPoolExecutor` (see threads.py). Nested scopes record into
every enclosing scope and the tightest budget applies.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import threading
import uuid
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from typing import Any, Self, TypeVar

from cascadeflow.errors import ConfigurationError, PolicyViolation
from cascadeflow.harness import state
from cascadeflow.harness.compliance import CompliancePolicy, resolve_compliance
from cascadeflow.harness.config import MODES
from cascadeflow.harness.kpi import validate_weights
from cascadeflow.harness.policy import HarnessPolicy
from cascadeflow.models import ModelConfig, as_model_config
from cascadeflow.pricing import MAX_LIMIT_USD, from_micro_usd, to_micro_usd
from cascadeflow.runtime.pipeline import CURRENT_SCOPE, AttemptRecord, CallContext, Charge, Runtime
from cascadeflow.trace.records import DecisionRecord

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


def _budget_micro(budget: Any) -> int | None:
    if budget is None:
        return None
    if isinstance(budget, bool) or not isinstance(budget, (int, float, Decimal, str)):
        raise ConfigurationError(f"budget must be a number of US dollars, got {budget!r}")
    try:
        dec = Decimal(str(budget))
    except InvalidOperation:
        raise ConfigurationError(f"budget must be a number of US dollars, got {budget!r}") from None
    if not dec.is_finite() or dec < 0 or dec > MAX_LIMIT_USD:
        raise ConfigurationError(f"budget must be a number of US dollars from 0 to {MAX_LIMIT_USD:,}, got "
                                 f"{budget!r}")
    return int(dec * 1_000_000)  # floor: a limit never grows by rounding


def _positive_int(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"{name} must be a non-negative integer, got {value!r}")
    return value


class RunScope:
    """One run: its limits, its policy, and what its calls cost and decided. Use via `run()` / `@agent`."""

    def __init__(self, *, budget: Any = None, max_tool_calls: int | None = None,
                 compliance: str | Mapping[str, Any] | CompliancePolicy | None = None,
                 kpi_weights: Mapping[str, float] | None = None, max_latency_ms: float | None = None,
                 user_id: str | None = None, name: str | None = None, mode: str | None = None,
                 models: Sequence[str | ModelConfig] = (), allow_cross_provider: bool | None = None,
                 compliance_file: str | os.PathLike[str] | None = None):
        config = state.current_config()
        self.mode = mode if mode is not None else config.mode
        if self.mode not in MODES:
            raise ConfigurationError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        self.budget_micro = _budget_micro(budget)
        self.max_tool_calls = _positive_int("max_tool_calls", max_tool_calls)
        if max_latency_ms is not None and (isinstance(max_latency_ms, bool) or
                                           not isinstance(max_latency_ms, (int, float)) or max_latency_ms <= 0):
            raise ConfigurationError(f"max_latency_ms must be a positive number, got {max_latency_ms!r}")
        self.max_latency_ms = max_latency_ms
        if compliance is None and compliance_file is None:  # the process default (init) applies
            compliance, compliance_file = config.compliance, config.compliance_file
        self.compliance = resolve_compliance(compliance, compliance_file)
        self.kpi_weights = validate_weights(kpi_weights)
        self.models = tuple(as_model_config(m) for m in models)
        self.allow_cross_provider = config.allow_cross_provider if allow_cross_provider is None \
            else bool(allow_cross_provider)
        self.user_id = user_id
        self.name = name
        self.run_id = uuid.uuid4().hex
        # built once: every call of an enforce-mode run reads it for its ledger reservation and budget check
        self._charge = None if self.budget_micro is None else Charge(f"run:{self.run_id}", self.budget_micro)
        self.parent: RunScope | None = None
        self.runtime: Runtime | None = None
        self.policy = HarnessPolicy(self)
        self._lock = threading.Lock()
        self._tokens: list[Any] = []
        self.spent = Decimal(0)
        self._spent_micro: tuple[Decimal | None, int] = (None, 0)  # (spent, to_micro_usd(spent)), swapped whole
        self.steps = 0
        self.calls = 0
        self.tool_calls = 0
        self.latency_total_ms = 0.0
        self.models_used: dict[str, int] = {}
        self._trace: list[DecisionRecord] = []
        self._noted: dict[int, DecisionRecord] = {}  # id(original) -> original (kept alive so ids stay unique)

    def chain(self) -> list[RunScope]:
        """This scope and every enclosing one, innermost first."""
        out: list[RunScope] = []
        scope: RunScope | None = self
        while scope is not None:
            out.append(scope)
            scope = scope.parent
        return out

    @property
    def charge(self) -> Charge | None:
        return self._charge

    def charges(self) -> list[Charge]:
        """Ledger charges of this scope and its parents; only enforce-mode scopes put money on the ledger."""
        if self.parent is None:  # the usual single scope (this runs for every call)
            return [self._charge] if self.mode == "enforce" and self._charge is not None else []
        return [s.charge for s in self.chain() if s.mode == "enforce" and s.charge is not None]

    def remaining_micro(self, *, settled_only: bool = False) -> int | None:
        """Budget left in micro-USD, None: no budget. In enforce mode it is also net of in-flight reservations
        on the ledger, unless `settled_only` (the cheap local figure, used for trace records)."""
        if self.budget_micro is None:
            return None
        spent, cached = self.spent, self._spent_micro
        if cached[0] is not spent:  # Decimals are immutable: a new total is a new object
            cached = self._spent_micro = (spent, to_micro_usd(spent))
        local = self.budget_micro - cached[1]
        ledger = getattr(self.runtime, "ledger", None)
        if self.mode == "enforce" and ledger is not None and not settled_only:
            local = min(local, ledger.remaining(self.charge))  # type: ignore[arg-type]
        return max(local, 0)

    def remaining_usd(self, *, settled_only: bool = False) -> float | None:
        """The tightest remaining budget of this scope and its parents, in USD."""
        if self.parent is None:  # the usual single scope (this runs for every traced decision)
            only = self.remaining_micro(settled_only=settled_only)
            return None if only is None else only / 1_000_000  # int / int rounds once, like float(Decimal)
        found = [r for r in (s.remaining_micro(settled_only=settled_only) for s in self.chain()) if r is not None]
        return float(from_micro_usd(min(found))) if found else None

    def note(self, decision: DecisionRecord) -> None:
        """Add a decision to this scope's trace and every enclosing scope's (once each). The innermost scope
        keeps the record itself, renumbered run-wide; enclosing scopes keep copies with their own numbering."""
        if self.parent is None:  # the usual single scope (this runs for every traced decision)
            with self._lock:
                if id(decision) not in self._noted:
                    self._noted[id(decision)] = decision
                    decision.step = len(self._trace) + 1
                    self._trace.append(decision)
            return
        for scope in self.chain():
            with scope._lock:
                if id(decision) in scope._noted:
                    continue
                scope._noted[id(decision)] = decision
                if scope is self:
                    decision.step = len(scope._trace) + 1
                    scope._trace.append(decision)
                else:
                    scope._trace.append(replace(decision, step=len(scope._trace) + 1, details=dict(decision.details)))

    def add_attempt(self, record: AttemptRecord, tool_calls: int) -> None:
        for scope in (self,) if self.parent is None else self.chain():
            with scope._lock:
                scope.spent += record.cost
                scope.steps += 1
                scope.tool_calls += tool_calls
                scope.latency_total_ms += record.latency_ms
                scope.models_used[record.model] = scope.models_used.get(record.model, 0) + 1

    def record(self, call: CallContext) -> None:
        """Runtime.finish hook: count the call, trace its decisions, feed the cascade's verdicts to stats."""
        for scope in (self,) if self.parent is None else self.chain():
            with scope._lock:
                scope.calls += 1
        self.policy.on_finish(call)

    def trace(self) -> list[DecisionRecord]:
        """One record per decision, in order; indexable like dicts (`r['action']`)."""
        with self._lock:
            return list(self._trace)

    def summary(self) -> dict[str, Any]:
        with self._lock:
            actions: dict[str, int] = {}
            for record in self._trace:
                actions[record.action] = actions.get(record.action, 0) + 1
            return {
                "run_id": self.run_id, "name": self.name, "mode": self.mode, "user_id": self.user_id,
                "cost_total": float(self.spent), "steps": self.steps, "calls": self.calls,
                "tool_calls": self.tool_calls, "latency_total_ms": round(self.latency_total_ms, 3),
                "budget_max": None if self.budget_micro is None else float(from_micro_usd(self.budget_micro)),
                "budget_remaining": None if self.budget_micro is None else self._remaining_unlocked(),
                "models_used": dict(self.models_used), "actions": actions,
                "compliance": self.compliance.name if self.compliance else None,
                "kpi_weights": dict(self.kpi_weights) if self.kpi_weights else None,
                "max_tool_calls": self.max_tool_calls,
            }

    def _remaining_unlocked(self) -> float:
        return float(from_micro_usd(max((self.budget_micro or 0) - to_micro_usd(self.spent), 0)))

    def __enter__(self) -> Self:
        self.parent = CURRENT_SCOPE.get()  # type: ignore[assignment]
        self.runtime = state.default_runtime()
        self._tokens.append(CURRENT_SCOPE.set(self))
        if self.budget_micro is not None:
            _open_budgeted[self] = threading.get_ident()
        return self

    def __exit__(self, *exc: object) -> None:
        CURRENT_SCOPE.reset(self._tokens.pop())
        if not self._tokens:
            _open_budgeted.pop(self, None)

    async def __aenter__(self) -> Self:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__(*exc)

    def __repr__(self) -> str:
        return f"RunScope(run_id={self.run_id!r}, mode={self.mode!r}, name={self.name!r})"


def run(*, budget: Any = None, max_tool_calls: int | None = None,
        compliance: str | Mapping[str, Any] | CompliancePolicy | None = None,
        kpi_weights: Mapping[str, float] | None = None, max_latency_ms: float | None = None,
        user_id: str | None = None, name: str | None = None, mode: str | None = None,
        models: Sequence[str | ModelConfig] = (), allow_cross_provider: bool | None = None,
        compliance_file: str | os.PathLike[str] | None = None) -> RunScope:
    """A run scope for `with` / `async with`; arguments are validated here, before any call is made.
    `compliance` names a preset (or is a dict / policy); a policy file is loaded only as `compliance_file`."""
    return RunScope(budget=budget, max_tool_calls=max_tool_calls, compliance=compliance, kpi_weights=kpi_weights,
                    max_latency_ms=max_latency_ms, user_id=user_id, name=name, mode=mode, models=models,
                    allow_cross_provider=allow_cross_provider, compliance_file=compliance_file)


# Budgeted scopes open right now -> the thread that opened them: a call made outside any scope while one is open
# elsewhere most likely comes from a thread started inside it that did not carry the context (a plain pool).
_open_budgeted: weakref.WeakKeyDictionary[RunScope, int] = weakref.WeakKeyDictionary()
_warned: weakref.WeakSet[RunScope] = weakref.WeakSet()


def check_escaped() -> None:
    """For a governed call made outside any run scope while a budgeted run is open in another thread: such a
    call most likely comes from a thread started inside the run that did not carry its context (a plain
    pool), so the run's budget would neither limit nor count it. An enforce-mode run refuses it
    (PolicyViolation, before anything is sent); an observe-mode run warns, once per run. A thread doing
    unrelated work while a budgeted run is open elsewhere opens a scope of its own (`with run():`)."""
    if not _open_budgeted:  # the usual case: nothing open, nothing to check
        return
    me = threading.get_ident()
    for scope, opened_in in list(_open_budgeted.items()):
        if opened_in == me:
            continue
        where = (f"outside run {scope.name or scope.run_id} while it is open in another thread, so its budget "
                 f"would neither limit nor count it. A thread started inside a run must carry its context: use "
                 f"cascadeflow.harness.ContextThreadPoolExecutor or spawn_thread, or submit "
                 f"contextvars.copy_context().run; a thread doing other work opens its own `with run():`")
        if scope.mode == "enforce":
            raise PolicyViolation(f"cascadeflow: refused an LLM call made {where}", policy="run_context")
        if scope not in _warned:
            _warned.add(scope)
            message = f"cascadeflow: an LLM call was made {where}"
            log.warning(message)
            warnings.warn(message, RuntimeWarning, stacklevel=4)


def current_run() -> RunScope | None:
    """The innermost run scope of the calling context, if any."""
    scope = CURRENT_SCOPE.get()
    return scope if isinstance(scope, RunScope) else None


def agent(func: F | None = None, /, **limits: Any) -> Any:
    """`@agent(budget=0.10, compliance="hipaa", kpi_weights={...})`: each invocation runs in its own scope."""
    run(**limits)  # validate the limits once, at decoration time

    def decorate(fn: F) -> F:
        scope_args = {**limits, "name": limits.get("name") or fn.__qualname__}
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                async with run(**scope_args):
                    return await fn(*args, **kwargs)
            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with run(**scope_args):
                return fn(*args, **kwargs)
        return wrapper  # type: ignore[return-value]

    return decorate(func) if func is not None else decorate
