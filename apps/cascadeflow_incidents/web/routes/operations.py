"""Operations: spend against the day's budget, the deferred queue, the audit trail (filtered, exported as
JSON lines or CSV), Prometheus metrics and health."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import PlainTextResponse, Response, StreamingResponse

from ..actions import drain_queue
from ..audit_view import AuditQuery, audit_records, audit_row, audit_total, export_csv, export_jsonl
from ..deps import Services, Writer
from ..overview import budget_view, queue_rows

router = APIRouter(tags=["operations"])


def audit_query(incident: str | None = Query(None, max_length=200), model: str | None = Query(None, max_length=200),
                action: str | None = Query(None, max_length=50), since: str | None = Query(None, max_length=40),
                until: str | None = Query(None, max_length=40)) -> AuditQuery:
    query = AuditQuery(incident=incident, model=model, action=action, since=since, until=until)
    try:
        query.record_filter()
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return query


Query_ = Annotated[AuditQuery, Depends(audit_query)]


@router.get("/api/budget", summary="Spend against the day's budget and each investigation's budget")
async def budget(svc: Services) -> dict[str, Any]:
    return budget_view(svc.data, svc.grouped(), daily_budget_usd=svc.settings.daily_budget_usd,
                       ledger=svc.ledger())


@router.get("/api/queue", summary="Alerts deferred by the budget, oldest first")
async def queue(svc: Services) -> dict[str, Any]:
    return {"items": queue_rows(svc.data)}


@router.post("/api/queue/drain", dependencies=[Writer], summary="Investigate the queued alerts the budget now fits")
async def drain(svc: Services) -> dict[str, Any]:
    return drain_queue(svc)


@router.get("/api/audit", summary="The audit trail, filtered by incident, model, action and time")
async def audit(svc: Services, query: Query_, limit: int = Query(500, ge=1, le=10000)) -> dict[str, Any]:
    records = audit_records(svc.data, query)
    return {"count": len(records), "total_usd": audit_total(records),
            "records": [audit_row(r) for r in records[-limit:]]}


@router.get("/api/audit.jsonl", summary="Export the filtered audit trail as JSON lines")
async def audit_jsonl(svc: Services, query: Query_) -> StreamingResponse:
    return StreamingResponse(export_jsonl(audit_records(svc.data, query)), media_type="application/x-ndjson",
                             headers={"Content-Disposition": 'attachment; filename="audit.jsonl"'})


@router.get("/api/audit.csv", summary="Export the filtered audit trail as CSV")
async def audit_csv(svc: Services, query: Query_) -> StreamingResponse:
    return StreamingResponse(export_csv(audit_records(svc.data, query)), media_type="text/csv",
                             headers={"Content-Disposition": 'attachment; filename="audit.csv"'})


@router.get("/metrics", summary="Prometheus metrics of this app's model calls", response_class=PlainTextResponse)
async def metrics(svc: Services) -> Response:
    if svc.metrics is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, 'metrics need prometheus-client: '
                            'pip install "cascadeflow[prometheus]"')
    import prometheus_client

    return Response(prometheus_client.generate_latest(svc.metrics.registry),
                    media_type=prometheus_client.CONTENT_TYPE_LATEST)


@router.get("/healthz", summary="Liveness: the app answers and its data directory is readable")
async def health(svc: Services) -> dict[str, Any]:
    running = sum(1 for i in list(svc.runner.tasks) if (svc.runner.status(i) or {}).get("running"))
    return {"ok": svc.data.root.is_dir(), "running_investigations": running, "plan": svc.plan.name}
