"""The incident memory: search (recall as the agent does it), reflection insights, and write-back."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, Field

from ..actions import remember
from ..deps import Services, Writer
from ..overview import memory_view

router = APIRouter(prefix="/api/memory", tags=["memory"])


class IncidentWrite(BaseModel):
    """A resolved incident for the memory (what recall compares against and insights count)."""

    title: str = Field(min_length=1, max_length=500)
    symptoms: str = Field(min_length=1, max_length=5000)
    root_cause: str = Field(min_length=1, max_length=5000)
    category: str = Field(min_length=1, max_length=100)
    remediation: str = Field(min_length=1, max_length=5000)
    services: tuple[str, ...] = ()
    deploy_version: str | None = None
    fix_worked: bool | None = None
    minutes_to_resolve: float | None = Field(None, ge=0)


@router.get("", summary="Remembered incidents; with q, the recall ranking for that text")
async def search(svc: Services, q: str | None = Query(None, max_length=2000), k: int = Query(5, ge=1, le=50)
                 ) -> dict[str, Any]:
    view = memory_view(svc.data, q, k=k, store=svc.memory)
    return {"query": view["query"], "results": view["results"], "records": view["records"]}


@router.get("/insights", summary="Reflection insights: recurring patterns with the incidents they rest on")
async def insights(svc: Services) -> dict[str, Any]:
    return {"insights": memory_view(svc.data, store=svc.memory)["insights"]}


@router.post("", status_code=status.HTTP_201_CREATED, dependencies=[Writer], summary="Write back an incident")
async def write(body: IncidentWrite, svc: Services) -> dict[str, Any]:
    try:
        record = remember(svc, body.model_dump())
    except PermissionError as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    return {"id": record.id, "title": record.title}
