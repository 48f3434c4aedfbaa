"""The data directory the web app reads, as the storm writes it: `events.jsonl`, `incidents.jsonl`,
`audit.jsonl`, `memory.sqlite`, `budget.sqlite`, `queue.sqlite` and `run.json` (formats in docs/web.md)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import events as ev

_WRITTEN = ("events.jsonl", "incidents.jsonl", "audit.jsonl", "memory.sqlite", "budget.sqlite", "queue.sqlite",
            "run.json", "summary.json")


class DataFiles:
    """Paths of the data directory and appends in its formats (one JSON object per line)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.events = self.root / "events.jsonl"
        self.incidents = self.root / "incidents.jsonl"
        self.audit = self.root / "audit.jsonl"
        self.memory = self.root / "memory.sqlite"
        self.budget = self.root / "budget.sqlite"
        self.queue = self.root / "queue.sqlite"
        self.run = self.root / "run.json"
        self.summary = self.root / "summary.json"  # the storm's summary table, as numbers

    def reset(self) -> None:
        """An empty directory for a new run: the files a run writes are removed (with SQLite's side files
        and rotated audit logs); anything else in the directory is left alone."""
        self.root.mkdir(parents=True, exist_ok=True)
        for name in _WRITTEN:
            for path in self.root.glob(f"{name}*"):
                path.unlink()

    def _append(self, path: Path, obj: Mapping[str, Any]) -> None:
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(obj, default=list) + "\n")

    def append_event(self, event: ev.Event) -> None:
        self._append(self.events, event.to_dict())

    def append_incident(self, incident_id: str, status: str, alert: Mapping[str, Any], *,
                        investigation_id: str | None = None, reason: str = "") -> None:
        self._append(self.incidents, {"incident_id": incident_id, "at": time.time(), "status": status,
                                      "alert": dict(alert), "investigation_id": investigation_id,
                                      "reason": reason})

    def write_run(self, **fields: Any) -> None:
        fields.setdefault("budget_key_prefix", None)
        fields.setdefault("finished_at", None)
        tmp = self.run.with_suffix(".tmp")
        tmp.write_text(json.dumps(fields, indent=2))
        tmp.replace(self.run)
