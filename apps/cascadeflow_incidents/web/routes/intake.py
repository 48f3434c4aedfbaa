"""Alert intake: Alertmanager and Grafana webhooks, guarded by the shared secret."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status

from ...intake import parse_alertmanager, parse_grafana
from ..actions import receive_alert
from ..deps import Services, Webhook

router = APIRouter(prefix="/api/alerts", tags=["alerts"], dependencies=[Webhook])


async def _payload(request: Request, limit: int) -> dict[str, Any]:
    body = await request.body()
    if len(body) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"alert payload over {limit} bytes")
    try:
        payload = json.loads(body)
    except ValueError:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "the alert payload is not JSON") from None
    if not isinstance(payload, dict):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "the alert payload must be a JSON object")
    return payload


def _receive(svc: Services, alerts: list) -> dict[str, Any]:
    results = [receive_alert(svc, alert) for alert in alerts]
    return {"received": len(results), "incidents": [
        {"incident_id": r.incident_id, "investigation_id": r.investigation_id, "status": r.status, "reason": r.reason}
        for r in results]}


@router.post("/alertmanager", status_code=status.HTTP_202_ACCEPTED,
             summary="Alertmanager webhook (version 4): each firing alert is investigated")
async def alertmanager(request: Request, svc: Services) -> dict[str, Any]:
    payload = await _payload(request, svc.settings.max_alert_bytes)
    try:
        alerts = parse_alertmanager(payload)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return _receive(svc, alerts)


@router.post("/grafana", status_code=status.HTTP_202_ACCEPTED,
             summary="Grafana webhook (unified alerting or legacy)")
async def grafana(request: Request, svc: Services) -> dict[str, Any]:
    payload = await _payload(request, svc.settings.max_alert_bytes)
    try:
        alerts = parse_grafana(payload)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return _receive(svc, alerts)
