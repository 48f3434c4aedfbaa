"""The recorded backend: tools answer from a scenario's evidence files, matched by kind suffix
('pods' reads 'eks_pods'), the most specific suffix winning ('pod_logs' before 'logs')."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .base import EvidenceMissing, ToolDeclaration


class RecordedEvidence:
    """Read-only view of recorded evidence by kind; `suffixes` are the `reads` of every declared tool."""

    def __init__(self, evidence: Mapping[str, Any], suffixes: Iterable[str]):
        self.evidence = dict(evidence)
        self._suffixes = sorted({s for s in suffixes if s}, key=len, reverse=True)

    def claimed_by(self, kind: str) -> str | None:
        """The most specific tool suffix that names this evidence kind, or None (generic tool only)."""
        return next((s for s in self._suffixes if kind == s or kind.endswith("_" + s)), None)

    def kinds_for(self, suffix: str) -> list[str]:
        return sorted(k for k in self.evidence if self.claimed_by(k) == suffix)

    def kind_for(self, declaration: ToolDeclaration) -> str | None:
        kinds = self.kinds_for(declaration.reads) if declaration.reads else []
        return kinds[0] if kinds else None

    def has(self, declaration: ToolDeclaration) -> bool:
        return declaration.reads is None or bool(self.kinds_for(declaration.reads))

    def unclaimed(self) -> list[str]:
        """Evidence kinds no dedicated tool reads (no tool's suffix, or a second kind of the same suffix, e.g.
        a database's events beside the cluster's): reachable through the generic `read_evidence` tool."""
        def primary(kind: str) -> bool:
            suffix = self.claimed_by(kind)
            return suffix is not None and self.kinds_for(suffix)[0] == kind
        return sorted(k for k in self.evidence if not primary(k))

    async def source(self, declaration: ToolDeclaration, params: Mapping[str, Any]) -> Any:
        kind = self.kind_for(declaration)
        if kind is None:
            raise EvidenceMissing(f"no recorded evidence for {declaration.name} (kind *{declaration.reads})")
        return self.evidence[kind]

    async def read(self, kind: str) -> Any:
        if kind not in self.evidence:
            raise EvidenceMissing(f"no evidence kind {kind!r}; recorded: {', '.join(sorted(self.evidence))}")
        return self.evidence[kind]
