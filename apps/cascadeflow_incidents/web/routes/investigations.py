"""Incidents and investigations: list, start (a scenario or a held incident), cancel, status, and the
live event stream (Server-Sent Events, resumable with Last-Event-ID)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, status
from pydantic import BaseModel, model_validator
from sse_starlette import EventSourceResponse

from ..actions import start_incident, start_scenario
from ..contexts import incidents_context
from ..deps import Services, Writer
from ..investigation_view import investigation_view
from ..runner import Started
from ..stream import PING_SECONDS, resume_point, sse_events

router = APIRouter(prefix="/api", tags=["investigations"])


class StartInvestigation(BaseModel):
    """Exactly one of: a recorded scenario's id, or an incident the app holds."""

    scenario_id: str | None = None
    incident_id: str | None = None

    @model_validator(mode="after")
    def _one(self) -> StartInvestigation:
        if bool(self.scenario_id) == bool(self.incident_id):
            raise ValueError("give exactly one of scenario_id or incident_id")
        return self


def start(svc: Services, body: StartInvestigation) -> Started:
    result = start_scenario(svc, body.scenario_id) if body.scenario_id else start_incident(svc, str(body.incident_id))
    if result is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no such scenario or incident: "
                            f"{body.scenario_id or body.incident_id}")
    return result


@router.get("/incidents", summary="Incidents, newest and most severe first, and the scenarios left")
async def incidents(svc: Services) -> dict[str, Any]:
    context = incidents_context(svc.data, svc.settings.scenario_root(), svc.grouped(), memory_store=svc.memory,
                                load_scenario=svc.load_scenario)
    return {"incidents": context["incidents"], "scenarios": context["scenarios"]}


@router.post("/investigations", status_code=status.HTTP_202_ACCEPTED, dependencies=[Writer],
             summary="Start an investigation of a scenario or an incident")
async def start_investigation(body: StartInvestigation, svc: Services) -> dict[str, Any]:
    result = start(svc, body)
    return {"incident_id": result.incident_id, "investigation_id": result.investigation_id,
            "status": result.status, "reason": result.reason}


@router.get("/investigations/{investigation_id}", summary="An investigation: its events, cost panel and analysis")
async def investigation(investigation_id: str, svc: Services) -> dict[str, Any]:
    events = svc.grouped().get(investigation_id)
    if not events:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no investigation {investigation_id}")
    view = investigation_view(events, live=svc.runner.status(investigation_id) is not None)
    return {"investigation_id": investigation_id, "status": view["status"], "alert": view["alert"],
            "events": [dict(e) for e in events], "cost": view["cost"], "analysis": view["analysis"]}


@router.get("/investigations/{investigation_id}/status", summary="Whether it runs, how many events so far")
async def investigation_status(investigation_id: str, svc: Services) -> dict[str, Any]:
    live = svc.runner.status(investigation_id)
    if live is not None:
        return live
    events = svc.grouped().get(investigation_id)
    if not events:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no investigation {investigation_id}")
    return {"investigation_id": investigation_id, "running": False, "events": len(events),
            "last_event": events[-1].get("type")}


@router.post("/investigations/{investigation_id}/cancel", dependencies=[Writer],
             summary="Cancel a running investigation")
async def cancel(investigation_id: str, svc: Services) -> dict[str, Any]:
    if not svc.runner.cancel(investigation_id):
        raise HTTPException(status.HTTP_409_CONFLICT, f"investigation {investigation_id} is not running")
    return {"investigation_id": investigation_id, "cancelled": True}


@router.get("/investigations/{investigation_id}/events",
            summary="The live event stream (SSE); reconnect with Last-Event-ID to resume",
            response_class=EventSourceResponse, responses={200: {"content": {"text/event-stream": {}}}})
async def events(investigation_id: str, svc: Services, last_event_id: Annotated[str | None, Header()] = None,
                 after: Annotated[int | None, Query(ge=0)] = None) -> EventSourceResponse:
    if svc.runner.status(investigation_id) is None and investigation_id not in svc.grouped():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no investigation {investigation_id}")
    return EventSourceResponse(sse_events(svc.runner, investigation_id, resume_point(last_event_id, after)),
                               ping=PING_SECONDS)
