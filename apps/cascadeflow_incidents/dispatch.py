"""Investigations under the day's budget: the incidents the day can afford are investigated, most severe
first and a few at a time; the rest wait in the durable `DeferredQueue` and are drained on the next budget
day. An incident leaves the queue only once its investigation finished (at-least-once), so nothing
accepted is lost: every incident ends investigated or still queued."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from cascadeflow import BudgetConfig, ConfigurationError, DeferredQueue
from cascadeflow.budget import BaseLedger, DeferredItem, charges_for

from . import events as ev
from .investigation import InvestigationReport, Investigator
from .memory import MemoryStore, remember
from .runbooks import RunbookIndex
from .storm import StormIncident
from .tools import recorded_toolbox

SECONDS_PER_DAY = 86_400


class IncidentFiles(Protocol):
    """Where the dispatcher writes what happens (the data directory the web app reads)."""

    def append_event(self, event: ev.Event) -> None: ...

    def append_incident(self, incident_id: str, status: str, alert: Mapping[str, Any], *,
                        investigation_id: str | None = None, reason: str = "", scenario: str | None = None
                        ) -> None: ...


class BudgetDays:
    """The ledger's clock: this machine's time moved forward by whole days. The demo cannot wait for
    tomorrow's budget, so `next_day()` starts it; every budget window follows the ledger's clock."""

    def __init__(self, now: Callable[[], float] = time.time):
        self._now = now
        self.offset_days = 0

    def __call__(self) -> float:
        return self._now() + self.offset_days * SECONDS_PER_DAY

    def next_day(self) -> None:
        self.offset_days += 1

    @property
    def label(self) -> str:
        return datetime.fromtimestamp(self(), UTC).date().isoformat()


@dataclass(slots=True)
class DayResult:
    day: str
    limit_usd: float
    spent_usd: float = 0.0
    investigated: list[str] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)  # deferred today (new arrivals, or kept from the queue)
    failed: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Dispatch:
    """What the dispatcher needs: one investigator per severity (routing by severity picks the plan, the
    plan routes each step by task type), the day's budget on the ledger, the queue, the memory."""

    investigators: Mapping[str, Investigator]
    budget: BudgetConfig
    ledger: BaseLedger
    days: BudgetDays
    queue: DeferredQueue
    files: IncidentFiles
    runbooks: RunbookIndex
    memory: MemoryStore | None = None
    concurrency: int = 2
    reports: dict[str, InvestigationReport] = field(default_factory=dict)
    deferred: set[str] = field(default_factory=set)  # every incident queued at least once
    attempts: dict[str, int] = field(default_factory=dict)  # investigations started, per incident
    on_report: Callable[[StormIncident, InvestigationReport], None] | None = None  # each finished one

    def day_used(self) -> tuple[int, int]:
        """(micro-USD spent or reserved today, today's limit in micro-USD) on the ledger."""
        charges = [c for c in charges_for(self.budget, now=self.days()) if ":day:" in c.key]
        if not charges:
            raise ConfigurationError("the storm needs a daily budget: BudgetConfig(daily_limit=...)")
        state = self.ledger.state(charges[0].key)
        return state.spent + state.reserved, charges[0].limit_micro

    def affords(self, investigator: Investigator, running: int) -> bool:
        """Whether today's budget still holds this investigation's whole budget beside the `running` ones
        (each counted at its whole budget), so no call of an admitted investigation is refused by the day."""
        used, limit = self.day_used()
        per_investigation = math.ceil(investigator.config.budget_usd * 1_000_000)
        return used + per_investigation * (running + 1) <= limit

    def _result(self) -> DayResult:
        return DayResult(self.days.label, self.day_used()[1] / 1_000_000)

    def _finish_day(self, result: DayResult) -> DayResult:
        result.spent_usd = self.day_used()[0] / 1_000_000
        return result

    async def first_day(self, incidents: list[StormIncident]) -> DayResult:
        """The storm's day: incidents in order (most severe first), `concurrency` at a time while the day
        affords them; once it does not even with nothing running, the rest are queued in the same order."""
        result = self._result()
        running: set[asyncio.Task[None]] = set()
        for incident in incidents:
            self.files.append_incident(incident.incident_id, "received", incident.alert.to_dict(),
                                       scenario=incident.scenario.scenario_id)
        for incident in incidents:
            investigator = self.investigators[incident.severity]
            while running and (len(running) >= self.concurrency or not self.affords(investigator, len(running))):
                _, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            if self.affords(investigator, len(running)):
                running.add(asyncio.create_task(self._investigate_or_defer(incident, result)))
            else:
                self._defer(incident, "the day's budget is spent", result)
        if running:
            await asyncio.wait(running)
        return self._finish_day(result)

    async def next_day(self, incidents: Mapping[str, StormIncident]) -> DayResult:
        """A new budget day drains the queue in order, one investigation at a time, while the day affords
        the next one; what it cannot afford (or what fails again) stays queued for the day after."""
        self.days.next_day()
        result = self._result()

        async def handle(item: DeferredItem) -> None:
            await self._investigate(incidents[item.payload["incident_id"]], result)

        while waiting := self.queue.list():
            head = incidents[waiting[0].payload["incident_id"]]
            if not self.affords(self.investigators[head.severity], 0):
                break
            if (await self.queue.adrain(handle, limit=1)).failed:
                break  # it stays queued; retried on the next day
        result.queued = [item.payload["incident_id"] for item in self.queue.list()]
        return self._finish_day(result)

    def _defer(self, incident: StormIncident, reason: str, result: DayResult) -> None:
        self.queue.enqueue({"incident_id": incident.incident_id, "alert": incident.alert.to_dict(),
                            "scenario": incident.scenario.scenario_id}, reason=reason)
        self.files.append_incident(incident.incident_id, "queued", incident.alert.to_dict(), reason=reason,
                                   scenario=incident.scenario.scenario_id)
        result.queued.append(incident.incident_id)
        self.deferred.add(incident.incident_id)

    async def _investigate_or_defer(self, incident: StormIncident, result: DayResult) -> None:
        try:
            await self._investigate(incident, result)
        except Exception as exc:  # noqa: BLE001 - any failure keeps the incident: queued for a retry
            self._defer(incident, f"investigation failed, retried on a later day: {exc}", result)

    def _investigation_id(self, incident_id: str) -> str:
        """The incident's id for its first investigation; a retry gets an id of its own (its own event
        stream from seq 1, its own budget session)."""
        self.attempts[incident_id] = attempt = self.attempts.get(incident_id, 0) + 1
        return incident_id if attempt == 1 else f"{incident_id}.attempt-{attempt}"

    async def _investigate(self, incident: StormIncident, result: DayResult) -> None:
        alert, scenario = incident.alert.to_dict(), incident.scenario.scenario_id
        investigation_id = self._investigation_id(incident.incident_id)
        self.files.append_incident(incident.incident_id, "investigating", alert, investigation_id=investigation_id,
                                   scenario=scenario)
        toolbox = recorded_toolbox(incident.scenario.evidence, memory=self.memory, runbooks=self.runbooks)
        log = ev.EventLog(investigation_id)
        task = asyncio.create_task(self.investigators[incident.severity].investigate(incident.alert, toolbox,
                                                                                     log=log))
        task.add_done_callback(lambda _: log.close())  # the stream ends however the investigation ends
        try:
            async for event in log.subscribe():  # written as they happen: a live reader follows along
                self.files.append_event(event)
            report = await task
        except Exception as exc:
            result.failed[incident.incident_id] = f"{type(exc).__name__}: {exc}"
            self.files.append_incident(incident.incident_id, "failed", alert, investigation_id=investigation_id,
                                       reason=result.failed[incident.incident_id], scenario=scenario)
            raise
        self.reports[incident.incident_id] = report
        if self.on_report is not None:
            self.on_report(incident, report)
        if self.memory is not None:  # write-back: the fix is not confirmed by a person, so it stays unknown
            remember(report, self.memory, fix_worked=None)
        self.files.append_incident(incident.incident_id, "resolved", alert, investigation_id=investigation_id,
                                   scenario=scenario)
        result.investigated.append(incident.incident_id)
