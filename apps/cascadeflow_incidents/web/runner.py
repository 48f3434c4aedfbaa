"""Live investigations inside the web app: start one for an alert (with the evidence source that alert
has), cancel it, report its status, and stream its events to any number of readers. Each event is
appended to the data directory's `events.jsonl` as it happens and each state change to `incidents.jsonl`,
so a page reloaded or a snapshot written later shows the same investigation.

Alerts the day's budget cannot fit go to the deferred queue instead of being investigated."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .. import events as ev
from ..intake import Alert
from ..investigation import Investigator
from ..tools import Toolbox
from .datadir import DataDir

log = logging.getLogger(__name__)
KEEP_FINISHED_LOGS = 256  # finished investigations kept in memory for readers; older ones replay from the file


@dataclass(frozen=True, slots=True, kw_only=True)
class Started:
    incident_id: str
    investigation_id: str | None  # None: queued or not investigated (see status and reason)
    status: str
    reason: str = ""


def alert_from_dict(body: Mapping[str, Any]) -> Alert:
    """An Alert back from its `to_dict()` (queue payloads, incident lines)."""
    return Alert(name=str(body.get("name") or "unnamed-alert"), severity=str(body.get("severity") or "P2"),
                 status=str(body.get("status") or "firing"), source=str(body.get("source") or "unknown"),
                 title=str(body.get("title") or ""), labels=dict(body.get("labels") or {}),
                 annotations=dict(body.get("annotations") or {}), starts_at=body.get("starts_at"))


class InvestigationRunner:
    """Runs investigations as asyncio tasks, at most `max_concurrent` at once (the rest wait their turn).
    `day_remaining` says how much of the day's budget is left (None: no day's budget)."""

    def __init__(self, investigator: Investigator, data: DataDir, *, max_concurrent: int = 4,
                 day_remaining: Callable[[], float | None] = lambda: None, queue: Any = None):
        self.investigator = investigator
        self.data = data.mkdir()
        self.max_concurrent = max_concurrent
        self.day_remaining = day_remaining
        self.queue = queue
        self.logs: dict[str, ev.EventLog] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.incident_of: dict[str, str] = {}
        self.fingerprint_of: dict[str, str] = {}
        self._gate: asyncio.Semaphore | None = None

    def _semaphore(self) -> asyncio.Semaphore:
        if self._gate is None:  # created inside the running loop that uses it
            self._gate = asyncio.Semaphore(self.max_concurrent)
        return self._gate

    def active_fingerprints(self) -> dict[str, str]:
        """Fingerprint -> incident id of every investigation still running (duplicates join it)."""
        return {self.fingerprint_of[i]: self.incident_of[i] for i, task in self.tasks.items() if not task.done()}

    def start(self, alert: Alert, toolbox: Toolbox, *, incident_id: str | None = None,
              scenario: str | None = None) -> Started:
        """Investigate `alert` now, or queue it when the day's budget cannot fit one more investigation.
        `scenario`: the recorded scenario the alert replays, if any (kept on every incident line)."""
        incident_id = incident_id or "INC-" + uuid.uuid4().hex[:8]
        remaining = self.day_remaining()
        budget = self.investigator.config.budget_usd
        if remaining is not None and remaining < budget and self.investigator.config.use_model:
            reason = f"the day's budget has ${remaining:.4f} left, less than one investigation's ${budget:.4f}"
            if self.queue is not None:
                self.queue.enqueue({"incident_id": incident_id, "alert": alert.to_dict(), "scenario": scenario},
                                   reason=reason)
            self.data.append_incident(incident_id, "queued", alert.to_dict(), reason=reason, scenario=scenario)
            return Started(incident_id=incident_id, investigation_id=None, status="queued", reason=reason)
        investigation_id = uuid.uuid4().hex[:12]
        events = ev.EventLog(investigation_id)
        self.logs[investigation_id] = events
        self.incident_of[investigation_id] = incident_id
        self.fingerprint_of[investigation_id] = alert.fingerprint
        self.data.append_incident(incident_id, "investigating", alert.to_dict(), investigation_id=investigation_id,
                                  scenario=scenario)
        self.tasks[investigation_id] = asyncio.create_task(self._run(alert, toolbox, events, incident_id, scenario))
        return Started(incident_id=incident_id, investigation_id=investigation_id, status="investigating")

    async def _run(self, alert: Alert, toolbox: Toolbox, events: ev.EventLog, incident_id: str,
                   scenario: str | None) -> None:
        journal = asyncio.create_task(self._journal(events))
        status, reason = "failed", ""
        try:
            async with self._semaphore():
                report = await self.investigator.investigate(alert, toolbox, log=events)
            status = "resolved"
            reason = f"stopped by {report.stopped_by}" if report.stopped_by else ""
        except asyncio.CancelledError:
            reason = "cancelled by an operator"
            if not events.closed:
                events.close()
        except Exception as exc:
            log.exception("investigation %s failed", events.investigation_id)
            reason = f"{type(exc).__name__}: {exc}"
            if not events.closed:
                events.close()
        finally:
            await journal
            self.data.append_incident(incident_id, status, alert.to_dict(),
                                      investigation_id=events.investigation_id, reason=reason, scenario=scenario)
            self._forget_old()

    async def _journal(self, events: ev.EventLog) -> None:
        async for event in events.subscribe():
            self.data.append_event(event)

    def _forget_old(self) -> None:
        finished = [i for i, t in self.tasks.items() if t.done()]
        for investigation_id in finished[:-KEEP_FINISHED_LOGS] if len(finished) > KEEP_FINISHED_LOGS else []:
            self.tasks.pop(investigation_id, None)
            self.logs.pop(investigation_id, None)

    def cancel(self, investigation_id: str) -> bool:
        task = self.tasks.get(investigation_id)
        if task is None or task.done():
            return False
        task.cancel()
        return True

    def status(self, investigation_id: str) -> dict[str, Any] | None:
        events = self.logs.get(investigation_id)
        if events is None:
            return None
        task = self.tasks.get(investigation_id)
        last = events.events[-1] if events.events else None
        return {"investigation_id": investigation_id, "incident_id": self.incident_of.get(investigation_id),
                "running": bool(task and not task.done()), "events": len(events.events),
                "last_event": last.type if last else None}

    async def stream(self, investigation_id: str, after: int = 0) -> AsyncIterator[dict[str, Any]]:
        """Every event with seq > `after`: live from the log while it runs, else read back from the file."""
        events = self.logs.get(investigation_id)
        if events is not None:
            async for event in events.subscribe(after=after):
                yield event.to_dict()
            return
        for line in self.data.read_events():
            if line.get("investigation_id") == investigation_id and int(line.get("seq", 0)) > after:
                yield line

    async def wait(self, timeout: float = 30.0) -> None:
        """Until every running investigation ended (tests, shutdown)."""
        pending = [t for t in self.tasks.values() if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    async def close(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        await self.wait(timeout=10.0)
