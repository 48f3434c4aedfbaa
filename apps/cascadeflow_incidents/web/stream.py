"""The live stream of one investigation as Server-Sent Events. Each SSE `id` is the event's `seq`, so a
browser that lost its connection reconnects with `Last-Event-ID` and receives exactly the events after
the last one it saw: none lost, none twice. Each message carries the event, its stream line, and (when
the money changed) the cost panel, so the page's script only places text."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from sse_starlette import ServerSentEvent

from .investigation_view import analysis, cost_panel, describe, panel_rows
from .runner import InvestigationRunner

PING_SECONDS = 15  # a comment line this often keeps proxies from closing an idle stream
RETRY_MS = 1000  # how soon a browser reconnects after a dropped connection
_MONEY_EVENTS = ("model_answered", "cost")


def resume_point(last_event_id: str | None, after: int | None) -> int:
    """Where to resume: the browser's `Last-Event-ID` (its last seen seq) or the page's `after`, whichever
    is later; anything unreadable counts as the start."""
    points = [after or 0]
    if last_event_id and last_event_id.strip().isdigit():
        points.append(int(last_event_id.strip()))
    return max(max(points), 0)


def message(event: Mapping[str, Any], seen: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The payload of one SSE message; `seen` is every event of the investigation up to this one."""
    body: dict[str, Any] = {"event": dict(event), "line": describe(event)}
    if event.get("type") in _MONEY_EVENTS:
        body["panel"] = panel_rows(cost_panel(seen))
    if event.get("type") == "investigation_finished":
        body["analysis"] = analysis(seen)
    return body


async def sse_events(runner: InvestigationRunner, investigation_id: str, after: int) -> AsyncIterator[ServerSentEvent]:
    """The investigation's events after `after`, as SSE messages, ending with an `end` message once it
    finished (the page then closes its EventSource instead of reconnecting)."""
    yield ServerSentEvent(comment="stream open", retry=RETRY_MS)
    seen: list[Mapping[str, Any]] = []
    async for event in runner.stream(investigation_id, after=0):  # from the start: the panel needs them all
        seen.append(event)
        seq = int(event.get("seq", 0))
        if seq > after:
            yield ServerSentEvent(data=json.dumps(message(event, seen), default=list), event="investigation", id=str(seq))
    yield ServerSentEvent(data=json.dumps({"investigation_id": investigation_id, "last_seq": len(seen)}), event="end")
