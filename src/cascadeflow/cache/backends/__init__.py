"""Where cached answers live: the `CacheBackend` protocol and `open_backend(config)`.

Every backend stores opaque bytes under a key with an optional expiry, keeps the embedding of an entry in
its semantic scope, and counts hits, misses and savings so `cascadeflow cache stats` can read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from cascadeflow.cache.config import CacheConfig

COUNTERS: tuple[str, ...] = ("hits", "semantic_hits", "misses", "stores", "saved_micro_usd", "observed_hits")


class CacheBackend(Protocol):
    name: str

    def get(self, key: str) -> bytes | None: ...  # None: absent or expired

    def put(self, key: str, value: bytes, ttl: float | None, *, scope: str | None = None,
            vector: bytes | None = None) -> None: ...  # also counts one "stores"

    def candidates(self, scope: str) -> list[tuple[str, bytes]]: ...  # (key, vector) of live entries

    def count(self, counters: Mapping[str, int]) -> None: ...  # one round trip for all of them

    def stats(self) -> dict[str, int]: ...  # "entries" and every counter

    def clear(self) -> int: ...  # entries removed; counters reset

    def close(self) -> None: ...


def open_backend(config: CacheConfig) -> CacheBackend:
    if config.backend == "memory":
        from cascadeflow.cache.backends.memory import MemoryCacheBackend

        return MemoryCacheBackend(max_entries=config.max_entries)
    if config.backend == "sqlite":
        from cascadeflow.cache.backends.sqlite import SqliteCacheBackend

        return SqliteCacheBackend(config.resolved_sqlite_path, max_entries=config.max_entries,
                                  prefix=config.key_prefix)
    from cascadeflow.cache.backends.redis import RedisCacheBackend

    return RedisCacheBackend.from_url(config.resolved_redis_url, prefix=config.key_prefix)
