"""Where tools read from in one investigation: an evidence backend (recorded scenario files or live
HTTP APIs) plus the team's memory and runbooks; and the full tool list."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import evidence, knowledge, kubernetes, observability
from .base import Tool, Toolbox, ToolDeclaration, ToolLimits
from .recorded import RecordedEvidence

ALL_TOOLS: tuple[Tool, ...] = (*kubernetes.TOOLS, *observability.TOOLS, *evidence.TOOLS, *knowledge.TOOLS)
SUFFIXES = tuple(t.declaration.reads for t in ALL_TOOLS if t.declaration.reads)


@dataclass(slots=True)
class Sources:
    evidence: Any  # RecordedEvidence or a live backend: source(), read(), has(), kind_for()
    memory: Any = None  # memory.MemoryStore
    runbooks: Any = None  # runbooks.RunbookIndex

    async def source(self, declaration: ToolDeclaration, params: Mapping[str, Any]) -> Any:
        return await self.evidence.source(declaration, params)

    async def read(self, kind: str) -> Any:
        return await self.evidence.read(kind)

    def has(self, declaration: ToolDeclaration) -> bool:
        if declaration is knowledge.RECALL:
            return self.memory is not None
        if declaration is knowledge.LOOKUP_RUNBOOK:
            return self.runbooks is not None
        return self.evidence.has(declaration)

    def kind_for(self, declaration: ToolDeclaration) -> str | None:
        return self.evidence.kind_for(declaration)


def recorded_toolbox(evidence_by_kind: Mapping[str, Any], *, memory: Any = None, runbooks: Any = None,
                     limits: ToolLimits | None = None) -> Toolbox:
    backend = Sources(RecordedEvidence(evidence_by_kind, SUFFIXES), memory, runbooks)
    return Toolbox(backend=backend, tools=ALL_TOOLS, limits=limits or ToolLimits())


def live_toolbox(config: Any, *, memory: Any = None, runbooks: Any = None, limits: ToolLimits | None = None,
                 client: Any = None) -> Toolbox:
    """Tools over live HTTP APIs (tools.live.LiveConfig): Kubernetes, Prometheus, Loki."""
    from .live import LiveSources

    backend = Sources(LiveSources(config, client=client), memory, runbooks)
    return Toolbox(backend=backend, tools=ALL_TOOLS, limits=limits or ToolLimits())
