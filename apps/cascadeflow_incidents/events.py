"""Every step of an investigation as a typed event, in order, for a live consumer (console, web stream).

Events are frozen dataclasses with a `type` tag and a per-investigation sequence number `seq`, so a
consumer that reconnects can ask for everything after the last `seq` it saw. `EventLog` keeps them and
hands them to async subscribers as they happen."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    type: ClassVar[str] = "event"
    investigation_id: str
    seq: int
    at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **asdict(self)}


@dataclass(frozen=True, slots=True, kw_only=True)
class InvestigationStarted(Event):
    type: ClassVar[str] = "investigation_started"
    alert: Mapping[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskClassified(Event):
    type: ClassVar[str] = "task_classified"
    task: str  # "investigate" | "triage"
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSelection(Event):
    type: ClassVar[str] = "model_selection"
    task_type: str
    model: str
    tier: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryHit(Event):
    type: ClassVar[str] = "memory_hit"
    incident_id: str
    score: float
    age_days: float
    summary: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RunbookHit(Event):
    type: ClassVar[str] = "runbook_hit"
    runbook: str
    title: str
    score: float
    matched_by: str  # "alert name" | "meaning"


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanMade(Event):
    type: ClassVar[str] = "plan_made"
    loop: int
    tools: tuple[str, ...]
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCalled(Event):
    type: ClassVar[str] = "tool_called"
    loop: int
    tool: str
    arguments: Mapping[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolReturned(Event):
    type: ClassVar[str] = "tool_returned"
    loop: int
    tool: str
    evidence_kind: str | None
    chars: int
    truncated: bool
    elapsed_ms: float
    error: str | None
    preview: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FindingStated(Event):
    type: ClassVar[str] = "finding"
    check: str
    subject: str
    statement: str
    category: str | None
    active: bool
    evidence: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelAnswered(Event):
    type: ClassVar[str] = "model_answered"
    task_type: str
    model: str
    tier: str
    cost_usd: float
    latency_ms: float
    request_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DiagnosisChecked(Event):
    type: ClassVar[str] = "diagnosis_checked"
    author: str
    category: str | None
    ok: bool
    problems: tuple[str, ...]
    action: str  # "accepted" | "escalate" | "analyzers stand"


@dataclass(frozen=True, slots=True, kw_only=True)
class CostUpdate(Event):
    type: ClassVar[str] = "cost"
    total_usd: float
    by_task: Mapping[str, float]
    by_model: Mapping[str, float]
    calls_by_tier: Mapping[str, int]
    budget_usd: float
    all_premium_usd: float = 0.0  # the same calls priced at the plan's strongest model


@dataclass(frozen=True, slots=True, kw_only=True)
class InvestigationFinished(Event):
    type: ClassVar[str] = "investigation_finished"
    category: str
    root_cause: str
    answer: str
    loops: int
    tool_calls: tuple[str, ...]
    cost_usd: float
    stopped_by: str | None  # why it ended early (budget, loop limit), None when it concluded


class EventLog:
    """The events of one investigation: appended in order, replayable from any `seq`, streamable."""

    def __init__(self, investigation_id: str):
        self.investigation_id = investigation_id
        self.events: list[Event] = []
        self._waiters: list[asyncio.Queue[Event | None]] = []
        self.closed = False

    def next_seq(self) -> int:
        return len(self.events) + 1

    def emit(self, cls: type[Event], **fields: Any) -> Event:
        event = cls(investigation_id=self.investigation_id, seq=self.next_seq(), **fields)
        self.events.append(event)
        for queue in self._waiters:
            queue.put_nowait(event)
        return event

    def close(self) -> None:
        self.closed = True
        for queue in self._waiters:
            queue.put_nowait(None)

    async def subscribe(self, after: int = 0) -> AsyncIterator[Event]:
        """Every event with seq > `after` (already emitted ones first), until the investigation ends."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._waiters.append(queue)
        try:
            sent = after
            for event in list(self.events):
                if event.seq > sent:
                    sent = event.seq
                    yield event
            while not self.closed or not queue.empty():
                event = await queue.get()
                if event is None:
                    break
                if event.seq > sent:
                    sent = event.seq
                    yield event
        finally:
            self._waiters.remove(queue)
