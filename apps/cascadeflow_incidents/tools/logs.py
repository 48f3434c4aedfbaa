"""`LogSearcher`: log search for the function-style tool API (`initialize_tools`), over recorded log
entries or any Toolbox whose backend answers `search_logs` (recorded evidence, Loki)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .shaping import items_of


class LogSearcher:
    """Searches log lines for a pattern: in `entries` (log entries as the tools return them), or through
    `toolbox` (its `search_logs` tool). Without either there is nothing to search and it finds nothing."""

    def __init__(self, entries: Sequence[Mapping[str, Any]] = (), *, toolbox: Any = None):
        self.entries = list(entries)
        self.toolbox = toolbox

    async def search(self, query: str, *, service: str | None = None) -> list[dict]:
        found: list[dict] = []
        if self.toolbox is not None:
            result = await self.toolbox.call("search_logs", {"query": query, **({"service": service} if service
                                                                                 else {})})
            found += [dict(e) for e in items_of(result.data) if isinstance(e, Mapping)]
        needle = query.lower()
        found += [dict(e) for e in self.entries if needle in str(e.get("message", "")).lower()
                  and (service is None or e.get("service") == service)]
        return found
