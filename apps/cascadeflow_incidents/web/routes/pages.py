"""The HTML pages (server-rendered; each works without JavaScript except the live stream) and the
browser's sign-in, whose cookie lets the pages' forms use the write endpoints."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ..actions import drain_queue, start_scenario
from ..audit_view import AuditQuery
from ..contexts import (
    audit_context,
    budget_context,
    incidents_context,
    investigation_context,
    memory_context,
)
from ..deps import Services, Writer
from ..rendering import LiveLinks
from ..security import SESSION_COOKIE, session_matches, session_value, token_matches
from .operations import audit_query

router = APIRouter(include_in_schema=False)
LINKS = LiveLinks()


def signed_in(request: Request, svc: Services) -> bool:
    return session_matches(request.cookies.get(SESSION_COOKIE), svc.settings.api_token)


def render(request: Request, svc: Services, template: str, ctx: dict[str, Any], *, code: int = 200) -> HTMLResponse:
    templates = request.app.state.templates
    return templates.TemplateResponse(request, template, {
        "ctx": ctx, "links": LINKS, "live": True, "inline": None, "page": ctx.get("page", ""),
        "signed_in": signed_in(request, svc), "here": request.url.path}, status_code=code)


@router.get("/", response_class=HTMLResponse)
async def incidents_page(request: Request, svc: Services) -> HTMLResponse:
    grouped = svc.grouped()
    return render(request, svc, "incidents.html", incidents_context(svc.data, svc.settings.scenario_root(), grouped, memory_store=svc.memory,
                                                              load_scenario=svc.load_scenario))


@router.get("/investigations/{investigation_id}", response_class=HTMLResponse)
async def investigation_page(investigation_id: str, request: Request, svc: Services) -> HTMLResponse:
    events = svc.grouped().get(investigation_id)
    if not events:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no investigation {investigation_id}")
    live = bool((svc.runner.status(investigation_id) or {}).get("running"))
    return render(request, svc, "investigation.html", investigation_context(investigation_id, events, live=live))


@router.get("/memory", response_class=HTMLResponse)
async def memory_page(request: Request, svc: Services, q: str | None = None) -> HTMLResponse:
    return render(request, svc, "memory.html", memory_context(svc.data, (q or "").strip()[:2000] or None, store=svc.memory))


@router.get("/budget", response_class=HTMLResponse)
async def budget_page(request: Request, svc: Services) -> HTMLResponse:
    grouped = svc.grouped()
    return render(request, svc, "budget.html", budget_context(svc.data, grouped, svc.settings.daily_budget_usd,
                                                                 ledger=svc.ledger()))


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(request: Request, svc: Services,
                     query: Annotated[AuditQuery, Depends(audit_query)]) -> HTMLResponse:
    return render(request, svc, "audit.html", audit_context(svc.data, query))


@router.post("/investigations", dependencies=[Writer])
async def start_from_page(svc: Services, scenario_id: Annotated[str, Form(max_length=200)]) -> Response:
    result = start_scenario(svc, scenario_id)
    if result is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no scenario {scenario_id}")
    target = LINKS.investigation(result.investigation_id) if result.investigation_id else LINKS.budget()
    return RedirectResponse(target, status.HTTP_303_SEE_OTHER)


@router.post("/investigations/{investigation_id}/cancel", dependencies=[Writer])
async def cancel_from_page(investigation_id: str, svc: Services) -> Response:
    svc.runner.cancel(investigation_id)
    return RedirectResponse(LINKS.investigation(investigation_id), status.HTTP_303_SEE_OTHER)


@router.post("/queue/drain", dependencies=[Writer])
async def drain_from_page(svc: Services) -> Response:
    drain_queue(svc)
    return RedirectResponse(LINKS.budget(), status.HTTP_303_SEE_OTHER)


def _local_path(target: str) -> str:
    """Only a path on this app (never another host) after signing in or out."""
    parts = urlsplit(target)
    return target if target.startswith("/") and not target.startswith("//") and not parts.netloc else "/"


@router.post("/session")
async def sign_in(request: Request, svc: Services, token: Annotated[str, Form(max_length=512)],
                  next: Annotated[str, Form(max_length=500)] = "/") -> Response:
    configured = svc.settings.api_token
    if not token_matches(token, configured):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong API token")
    response = RedirectResponse(_local_path(next), status.HTTP_303_SEE_OTHER)
    assert configured is not None  # token_matches is False without one
    response.set_cookie(SESSION_COOKIE, session_value(configured), httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


@router.post("/session/end")
async def sign_out() -> Response:
    response = RedirectResponse("/", status.HTTP_303_SEE_OTHER)
    response.delete_cookie(SESSION_COOKIE)
    return response
