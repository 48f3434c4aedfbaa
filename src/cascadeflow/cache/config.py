"""`CacheConfig`: what the response cache stores, where, for how long, and who may be served from it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cascadeflow.errors import ConfigurationError

Backend = Literal["memory", "sqlite", "redis"]
BACKENDS: tuple[str, ...] = ("memory", "sqlite", "redis")
DEFAULT_SQLITE_PATH = ".cascadeflow/cache.sqlite3"
DEFAULT_REDIS_URL = "redis://localhost:6379"
# From the curve of benchmarks/cache_semantic.py (docs/cache.md): one step (0.01) above the lowest threshold
# whose false-hit rate on the labelled near misses is at most 1%, as margin for wordings the set lacks.
DEFAULT_SIMILARITY = 0.88
SCOPE_FIELDS: tuple[str, ...] = ("user", "agent")  # besides these, a name is read from the call's metadata


@dataclass(frozen=True, slots=True)
class CacheConfig:
    """The response cache: `CacheConfig(enabled=True, ttl=3600, backend="redis", redis_url="redis://...")`.

    `ttl`: seconds an answer may be served (None: until evicted). `backend`: "memory" (this process),
    "sqlite" (`sqlite_path`, shared by processes on one machine) or "redis" (`redis_url`, shared by every
    machine; entries expire through Redis TTLs, the size is bounded by the server's maxmemory policy).
    `max_entries` bounds memory and SQLite (least recently used entries are evicted first).
    `semantic=True` also serves an answer to a differently worded last user message whose embedding is at
    least `similarity` close (everything else about the request must match exactly); `embedder` replaces
    the bundled offline MiniLM. `cache_tool_calls` lets answers that call tools be stored. `scope_by`
    separates entries per `"user"` (user_id), `"agent"` (agent id) or any metadata field (e.g.
    `"tenant_id"`); a call missing a scoping value bypasses the cache. `key_prefix` separates
    applications sharing one Redis or SQLite file.
    """

    enabled: bool = True
    ttl: float | None = 3600.0
    backend: Backend = "memory"
    redis_url: str | None = None
    sqlite_path: str | None = None
    max_entries: int = 10_000
    semantic: bool = False
    similarity: float = DEFAULT_SIMILARITY
    embedder: Any = None
    cache_tool_calls: bool = False
    scope_by: Sequence[str] = ()
    key_prefix: str = "cascadeflow:cache:"

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ConfigurationError(f"CacheConfig.enabled must be True or False, got {self.enabled!r}")
        if self.ttl is not None and (isinstance(self.ttl, bool) or not isinstance(self.ttl, (int, float))
                                     or not math.isfinite(self.ttl) or self.ttl <= 0):
            raise ConfigurationError(f"CacheConfig.ttl must be positive seconds or None, got {self.ttl!r}")
        if self.backend not in BACKENDS:
            raise ConfigurationError(f"CacheConfig.backend must be one of {', '.join(BACKENDS)}; "
                                     f"got {self.backend!r}")
        if self.redis_url is not None and not str(self.redis_url).startswith(("redis://", "rediss://", "unix://")):
            raise ConfigurationError(f"CacheConfig.redis_url must start with redis://, rediss:// or unix://; "
                                     f"got {self.redis_url!r}")
        if isinstance(self.max_entries, bool) or not isinstance(self.max_entries, int) or self.max_entries < 1:
            raise ConfigurationError(f"CacheConfig.max_entries must be a positive integer, got {self.max_entries!r}")
        if isinstance(self.similarity, bool) or not isinstance(self.similarity, (int, float)) \
                or not 0 < self.similarity <= 1:
            raise ConfigurationError(f"CacheConfig.similarity must be in (0, 1], got {self.similarity!r}")
        if isinstance(self.scope_by, str):
            object.__setattr__(self, "scope_by", (self.scope_by,))
        object.__setattr__(self, "scope_by", tuple(self.scope_by))
        for name in self.scope_by:
            if not isinstance(name, str) or not name:
                raise ConfigurationError(f"CacheConfig.scope_by takes field names such as 'user' or "
                                         f"'tenant_id'; got {name!r}")
        if not isinstance(self.key_prefix, str) or not self.key_prefix:
            raise ConfigurationError("CacheConfig.key_prefix must be a non-empty string")

    @property
    def resolved_redis_url(self) -> str:
        return self.redis_url or DEFAULT_REDIS_URL

    @property
    def resolved_sqlite_path(self) -> str:
        return self.sqlite_path or DEFAULT_SQLITE_PATH
