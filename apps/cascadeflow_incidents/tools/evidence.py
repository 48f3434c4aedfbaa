"""The generic tool: any evidence kind without a dedicated tool (a new source, a new file kind) is still
reachable by name."""

from __future__ import annotations

from typing import Any

from .base import Param, Tool, ToolDeclaration

READ_EVIDENCE = ToolDeclaration(
    "read_evidence", "Read one evidence source by kind when no dedicated tool covers it.",
    (Param("kind", str, "the evidence kind, e.g. rds_metrics", required=True),))


async def read_evidence(backend: Any, kind: str) -> Any:
    return await backend.read(kind)


TOOLS = (Tool(READ_EVIDENCE, read_evidence),)
