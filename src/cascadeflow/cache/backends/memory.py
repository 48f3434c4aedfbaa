"""`MemoryCacheBackend`: entries in this process, bounded by `max_entries` (least recently used go first)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Mapping

from cascadeflow.cache.backends import COUNTERS


class MemoryCacheBackend:
    name = "memory"

    def __init__(self, *, max_entries: int = 10_000, clock=time.time):
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (value, expires_at or None, scope or None); order = recency of use
        self._entries: OrderedDict[str, tuple[bytes, float | None, str | None]] = OrderedDict()
        self._scopes: dict[str, dict[str, bytes]] = {}  # scope -> key -> vector
        self._counters = dict.fromkeys(COUNTERS, 0)

    def get(self, key: str) -> bytes | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[1] is not None and entry[1] <= self._clock():
                self._drop(key)
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: str, value: bytes, ttl: float | None, *, scope: str | None = None,
            vector: bytes | None = None) -> None:
        expires = self._clock() + ttl if ttl is not None else None
        with self._lock:
            if key in self._entries:
                self._drop(key)
            self._entries[key] = (value, expires, scope if vector is not None else None)
            if scope is not None and vector is not None:
                self._scopes.setdefault(scope, {})[key] = vector
            self._counters["stores"] += 1
            while len(self._entries) > self.max_entries:
                self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        _, _, scope = self._entries.pop(key)
        if scope is not None:
            vectors = self._scopes.get(scope)
            if vectors is not None:
                vectors.pop(key, None)
                if not vectors:
                    del self._scopes[scope]

    def candidates(self, scope: str) -> list[tuple[str, bytes]]:
        now = self._clock()
        with self._lock:
            vectors = self._scopes.get(scope)
            if not vectors:
                return []
            live = []
            for key, vector in list(vectors.items()):
                expires = self._entries[key][1]
                if expires is not None and expires <= now:
                    self._drop(key)
                else:
                    live.append((key, vector))
            return live

    def count(self, counters: Mapping[str, int]) -> None:
        with self._lock:
            for counter, amount in counters.items():
                self._counters[counter] += amount

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"entries": len(self._entries), **self._counters}

    def clear(self) -> int:
        with self._lock:
            removed = len(self._entries)
            self._entries.clear()
            self._scopes.clear()
            self._counters = dict.fromkeys(COUNTERS, 0)
            return removed

    def close(self) -> None:
        pass
