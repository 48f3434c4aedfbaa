"""What the routes use, built once from the settings: the data directory, the model plan and its
CascadeFlow (audit log and ledger in the data directory, the day's budget, Prometheus metrics), the
incident memory, the runbooks, the deferred queue and the investigation runner. Tests build their own
(scripted models) and hand it to `create_app`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cascadeflow import BudgetConfig, CascadeFlow, ConfigurationError, DeferredQueue

from ..intake import Alert, Scenario, load_scenario
from ..intake.scenario import own_evidence
from ..investigation import InvestigationConfig, Investigator
from ..llm import ModelPlan, plan_for
from ..runbooks import RunbookIndex
from ..tools import LiveConfig, Toolbox, live_toolbox, recorded_toolbox
from .datadir import DataDir, EventIndex
from .runner import InvestigationRunner
from .settings import IncidentWebSettings

log = logging.getLogger(__name__)


@dataclass(slots=True)
class DayBudget:
    """The day's budget on the data directory's ledger: what is left of it, read from the ledger."""

    data: DataDir
    daily_usd: float | None
    _ledger: Any = None

    def ledger(self) -> Any:
        """The ledger, opened once it exists (the pages read it on every view)."""
        if self._ledger is None and self.data.budget.exists():
            from cascadeflow import open_ledger

            self._ledger = open_ledger(self.data.ledger_url)
        return self._ledger

    def remaining(self) -> float | None:
        """USD left today (None when no day's budget is set)."""
        if self.daily_usd is None:
            return None
        from .overview import budget_view

        view = budget_view(self.data, {}, daily_budget_usd=self.daily_usd, ledger=self.ledger())
        used = (view["spent_usd"] or 0.0) + (view["reserved_usd"] or 0.0)
        return max(float(self.daily_usd) - used, 0.0)

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None


@dataclass(slots=True)
class WebServices:
    settings: IncidentWebSettings
    data: DataDir
    runner: InvestigationRunner
    plan: ModelPlan
    queue: DeferredQueue
    budget: DayBudget
    metrics: Any = None  # a cascadeflow MetricsCollector when prometheus-client is installed
    memory: Any = None
    runbooks: RunbookIndex | None = None
    _loaded: dict[str, Scenario] = field(default_factory=dict)
    events: EventIndex | None = None

    def ledger(self) -> Any:
        return self.budget.ledger()

    async def close(self) -> None:
        """Cancel what still runs (its incident says so), then close the queue and the ledger."""
        await self.runner.close()
        self.queue.close()
        self.budget.close()

    def event_index(self) -> EventIndex:
        if self.events is None:
            self.events = EventIndex(self.data.events)
        return self.events

    def grouped(self) -> dict[str, list[Mapping[str, Any]]]:
        """Every investigation's events (the journal, running ones from memory)."""
        from .contexts import live_events

        running = {i: log for i, log in self.runner.logs.items() if not self.runner.tasks[i].done()}
        return live_events(self.event_index(), running)  # a finished one is whole in the journal

    def load_scenario(self, folder: Path) -> Scenario:
        """A scenario folder, read once (evidence files are not re-read on every page)."""
        key = str(folder.resolve())
        if key not in self._loaded:
            self._loaded[key] = load_scenario(folder)
        return self._loaded[key]

    def scenario(self, scenario_id: str) -> Scenario | None:
        """A recorded scenario by id (a folder directly under the scenario root, nothing else)."""
        folder = self.settings.scenario_root() / scenario_id
        if not folder.is_dir() or folder.resolve().parent != self.settings.scenario_root().resolve():
            return None
        return self.load_scenario(folder)

    def scenario_for(self, alert: Alert) -> Scenario | None:
        """The recorded scenario whose alert is the same alert (same fingerprint), if any."""
        root = self.settings.scenario_root()
        if not root.is_dir():
            return None
        for folder in sorted(p for p in root.iterdir() if (p / "alert.json").is_file()):
            scenario = self.scenario(folder.name)
            if scenario is not None and scenario.alert.fingerprint == alert.fingerprint:
                return scenario
        return None

    def toolbox_for(self, alert: Alert) -> Toolbox | None:
        """Where this alert's evidence comes from: its recorded scenario, the recorded evidence folder, or
        the live read-only sources; None when the app has no source for it (the alert is kept, not guessed at)."""
        s = self.settings
        scenario = self.scenario_for(alert)
        if scenario is not None:
            return recorded_toolbox(scenario.evidence, memory=self.memory, runbooks=self.runbooks)
        if s.evidence_dir is not None:
            return recorded_toolbox(own_evidence(s.evidence_dir), memory=self.memory, runbooks=self.runbooks)
        if s.kubernetes_url or s.prometheus_url or s.loki_url:
            token = s.kubernetes_token.get_secret_value() if s.kubernetes_token else None
            live = LiveConfig(kubernetes_url=s.kubernetes_url, kubernetes_token=token, namespace=alert.namespace,
                              prometheus_url=s.prometheus_url, loki_url=s.loki_url)
            return live_toolbox(live, memory=self.memory, runbooks=self.runbooks)
        return None


def _metrics() -> Any:
    try:
        from cascadeflow import MetricsCollector

        return MetricsCollector()
    except ConfigurationError:  # the prometheus extra is absent: /metrics says so
        return None


def build_services(settings: IncidentWebSettings, *, cf: CascadeFlow | None = None,
                   plan: ModelPlan | None = None, memory: Any = None, runbooks: RunbookIndex | None = None
                   ) -> WebServices:
    """The services of a running app. `cf` and `plan` replace the configured models (tests pass scripted
    ones); the audit log and the ledger then are whatever that CascadeFlow was given. `memory` and
    `runbooks` replace the data directory's memory and the configured runbooks."""
    data = DataDir(settings.data_dir).mkdir()
    use_model = settings.plan != "none"
    plan = plan or plan_for("embedded" if not use_model else settings.plan, cheap=settings.cheap_model,
                            strong=settings.strong_model)
    metrics = _metrics()
    if cf is None:
        audit: list[Any] = [str(data.audit)] + ([metrics] if metrics is not None else [])
        budget = BudgetConfig(daily_limit=settings.daily_budget_usd) if settings.daily_budget_usd else None
        cf = CascadeFlow(router=plan.router, audit=audit, ledger=data.ledger_url, budget_config=budget)
    elif metrics is not None:
        cf.runtime.sinks.append(metrics)
    if memory is None:
        from ..memory import MemoryStore

        memory = MemoryStore(data.memory)
    if runbooks is None:
        runbooks = RunbookIndex(settings.runbooks_dir) if settings.runbooks_dir else RunbookIndex()
    config = InvestigationConfig(budget_usd=settings.budget_usd, max_loops=settings.max_loops, use_model=use_model)
    queue = DeferredQueue(data.queue)
    budget = DayBudget(data, settings.daily_budget_usd)
    runner = InvestigationRunner(Investigator(cf=cf, plan=plan, config=config), data,
                                 max_concurrent=settings.max_concurrent, day_remaining=budget.remaining, queue=queue)
    return WebServices(settings=settings, data=data, runner=runner, plan=plan, queue=queue, budget=budget,
                       metrics=metrics, memory=memory, runbooks=runbooks)
