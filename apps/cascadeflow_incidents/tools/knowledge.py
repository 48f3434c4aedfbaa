"""Tools over what the team knows: similar past incidents (memory), runbooks, and a notification draft
that is never sent without a person."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .base import EvidenceMissing, Param, Tool, ToolDeclaration

RECALL = ToolDeclaration(
    "recall_similar_incidents", "Past incidents similar to a description, scored by meaning, keywords and age.",
    (Param("query", str, "symptoms to match", required=True), Param("k", int, "how many (default 3)")))
LOOKUP_RUNBOOK = ToolDeclaration(
    "lookup_runbook", "Runbooks for an alert: the one named for it first, then the closest by meaning.",
    (Param("alert_name", str, "the alert's name"), Param("query", str, "what is happening", required=True)))
DRAFT_NOTIFICATION = ToolDeclaration(
    "draft_notification", "Draft a message for the on-call channel. It is a draft: a person sends it.",
    (Param("channel", str, "where it would go", required=True), Param("text", str, "the message", required=True)))


async def recall_similar_incidents(sources: Any, query: str, k: int = 3) -> Any:
    if sources.memory is None:
        raise EvidenceMissing("no incident memory configured")
    return [{"id": r.record.id, "title": r.record.title, "category": r.record.category,
             "root_cause": r.record.root_cause, "remediation": r.record.remediation,
             "fix_worked": r.record.fix_worked, "score": round(r.score, 4), "recency": round(r.recency, 4),
             "age_days": round(r.record.age_days(datetime.now(UTC)), 1)}
            for r in sources.memory.search(query, k=k)]


async def lookup_runbook(sources: Any, query: str, alert_name: str | None = None) -> Any:
    if sources.runbooks is None:
        raise EvidenceMissing("no runbook folder configured")
    return [{"runbook": m.runbook.name, "title": m.runbook.title, "score": round(m.score, 4),
             "matched_by": m.matched_by, "excerpt": m.runbook.body[:600]}
            for m in sources.runbooks.search(alert_name, query)]


async def draft_notification(sources: Any, channel: str, text: str) -> Any:
    return {"channel": channel, "text": text, "status": "draft: not sent; a person reviews and sends it"}


TOOLS = (Tool(RECALL, recall_similar_incidents), Tool(LOOKUP_RUNBOOK, lookup_runbook),
         Tool(DRAFT_NOTIFICATION, draft_notification))
