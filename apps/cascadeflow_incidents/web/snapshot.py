"""`write_snapshot(data_dir, out_path)`: the dashboard's pages rendered into ONE self-contained HTML file
(the stylesheet and script inline, the data embedded, links as in-page anchors) that opens from disk
without a server. It reads the data directory and writes nothing there."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from markupsafe import Markup

from .audit_view import AuditQuery
from .contexts import audit_context, budget_context, incidents_context, investigation_context, memory_context
from .datadir import DataDir
from .overview import events_by_investigation
from .rendering import STATIC, SnapshotLinks, environment


def _own_asset(name: str, closing: str) -> Markup:
    """A shipped static file to inline; it is ours, so it is marked safe, but it must not close its tag."""
    text = (STATIC / name).read_text(encoding="utf-8")
    if closing in text.lower():
        raise ValueError(f"{name} contains {closing!r} and cannot be inlined")
    return Markup(text)


def snapshot_html(data_dir: str | os.PathLike[str], *, scenarios_dir: str | os.PathLike[str] | None = None) -> str:
    data = DataDir(data_dir)
    grouped = events_by_investigation(data.read_events())
    incidents = incidents_context(data, Path(scenarios_dir) if scenarios_dir else data.scenarios, grouped)
    order = [r["investigation_id"] for r in incidents["incidents"] if r["investigation_id"] in grouped]
    investigations = [investigation_context(i, grouped[i], live=False) for i in order]
    run = data.read_run()
    context: dict[str, Any] = {
        "links": SnapshotLinks(), "live": False, "signed_in": False, "page": "snapshot", "here": "",
        "inline": {"css": _own_asset("app.css", "</style"), "js": _own_asset("stream.js", "</script"),
                   "source": run.get("label") or str(data.root),
                   "written": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")},
        "incidents": incidents, "investigations": investigations, "memory": memory_context(data),
        "budget": budget_context(data, grouped, run.get("daily_budget_usd")),
        "audit": audit_context(data, AuditQuery()),
        "data": {"run": run, "incidents": incidents["incidents"], "events": grouped},
    }
    return environment().get_template("snapshot.html").render(context)


def write_snapshot(data_dir: str | os.PathLike[str], out_path: str | os.PathLike[str]) -> Path:
    """Render the dashboard of `data_dir` into the single HTML file `out_path` (written atomically)."""
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(out.name + ".tmp")
    temporary.write_text(snapshot_html(data_dir), encoding="utf-8")
    temporary.replace(out)
    return out
