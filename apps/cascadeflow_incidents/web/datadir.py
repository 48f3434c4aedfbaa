"""The data directory the web app shows and the demo writes: where each file lives, how events, incident
states and the run description are appended, and how they are read back (a torn last line is skipped).

Only the standard library: the demo writes a directory without the `web` extra installed."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

DEFAULT_DATA_DIR = Path(".cascadeflow") / "incidents"
INCIDENT_STATUSES = ("received", "queued", "investigating", "resolved", "failed")


class DataDir:
    """The files of one data directory; every one is optional (missing means nothing of that kind yet)."""

    __slots__ = ("root",)

    def __init__(self, root: str | os.PathLike[str] = DEFAULT_DATA_DIR):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"DataDir({str(self.root)!r})"

    @property
    def events(self) -> Path:
        return self.root / "events.jsonl"

    @property
    def incidents(self) -> Path:
        return self.root / "incidents.jsonl"

    @property
    def audit(self) -> Path:
        return self.root / "audit.jsonl"

    @property
    def memory(self) -> Path:
        return self.root / "memory.sqlite"

    @property
    def budget(self) -> Path:
        return self.root / "budget.sqlite"

    @property
    def ledger_url(self) -> str:
        return f"sqlite:///{self.budget}"

    @property
    def queue(self) -> Path:
        return self.root / "queue.sqlite"

    @property
    def run(self) -> Path:
        return self.root / "run.json"

    @property
    def scenarios(self) -> Path:
        return self.root / "scenarios"

    def mkdir(self) -> DataDir:
        self.root.mkdir(parents=True, exist_ok=True)
        return self

    def append_event(self, event: Any) -> None:
        """Append one event (an `events.Event` or its `to_dict()`) as a JSON line."""
        append_jsonl(self.events, event.to_dict() if hasattr(event, "to_dict") else dict(event))

    def append_incident(self, incident_id: str, status: str, alert: Mapping[str, Any], *,
                        investigation_id: str | None = None, reason: str = "", at: float | None = None,
                        scenario: str | None = None) -> dict:
        """Record an incident's new state; the last line per `incident_id` is its current state.
        `scenario` names the recorded scenario the incident replays, when it does (the incident list
        then knows that scenario was investigated, whatever labels the replayed alert carried)."""
        if status not in INCIDENT_STATUSES:
            raise ValueError(f"incident status must be one of {', '.join(INCIDENT_STATUSES)}, got {status!r}")
        line = {"incident_id": incident_id, "at": time.time() if at is None else at, "status": status,
                "alert": dict(alert), "investigation_id": investigation_id, "reason": reason}
        if scenario is not None:
            line["scenario"] = scenario
        append_jsonl(self.incidents, line)
        return line

    def write_run(self, *, label: str, plan: str, daily_budget_usd: float | None, budget_day: str,
                  budget_key_prefix: str | None = None, started_at: float | None = None,
                  finished_at: float | None = None, budget_days: Sequence[str] = ()) -> dict:
        """Describe the run (rewritten whole, atomically, so a reader never sees half a file).
        `budget_days` lists every budget day the run spent on, in order (default: `budget_day` alone)."""
        days = list(dict.fromkeys([*budget_days] or [budget_day]))
        body = {"label": label, "plan": plan, "daily_budget_usd": daily_budget_usd,
                "budget_key_prefix": budget_key_prefix, "budget_day": budget_day, "budget_days": days,
                "started_at": time.time() if started_at is None else started_at, "finished_at": finished_at}
        self.mkdir()
        temporary = self.run.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(body, indent=2))
        temporary.replace(self.run)
        return body

    def read_run(self) -> dict[str, Any]:
        try:
            body = json.loads(self.run.read_text())
        except (OSError, ValueError):
            return {}
        return body if isinstance(body, dict) else {}

    def read_events(self) -> list[dict[str, Any]]:
        return list(read_jsonl(self.events))

    def read_incidents(self) -> dict[str, dict[str, Any]]:
        """Each incident's current state (its last line), in order of first appearance."""
        current: dict[str, dict[str, Any]] = {}
        for line in read_jsonl(self.incidents):
            incident_id = line.get("incident_id")
            if isinstance(incident_id, str):
                first_at = current.get(incident_id, line).get("first_at", line.get("at"))
                current[incident_id] = {**line, "first_at": first_at}
        return current


class EventIndex:
    """`events.jsonl` grouped by investigation, read incrementally: each `refresh()` parses only the lines
    appended since the last one (a file that shrank was replaced, and is read again from the start)."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self.grouped: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def refresh(self) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            try:
                size = self.path.stat().st_size
            except OSError:
                return self.grouped
            if size < self.offset:
                self.offset, self.grouped = 0, {}
            if size == self.offset:
                return self.grouped
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read(size - self.offset)
            complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits for the next refresh
            self.offset += len(complete)
            for raw in complete.split(b"\n"):
                try:
                    event = json.loads(raw) if raw.strip() else None
                except ValueError:
                    continue
                if isinstance(event, dict):
                    self.grouped.setdefault(str(event.get("investigation_id")), []).append(event)
            return self.grouped


_APPEND_LOCK = threading.Lock()  # one writer thread at a time per process keeps whole lines together


def append_jsonl(path: Path, record: Mapping[str, Any]) -> None:
    line = json.dumps(record, default=_jsonable, separators=(",", ":")) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with _APPEND_LOCK, path.open("a", encoding="utf-8") as handle:
        handle.write(line)
        handle.flush()


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSON-lines file; a torn last line (a writer mid-write) and blank or corrupt
    lines are skipped."""
    try:
        data = path.read_bytes()
    except OSError:
        return
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except ValueError:
            continue
        if isinstance(value, dict):
            yield value


def _jsonable(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")
