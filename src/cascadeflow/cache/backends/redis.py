"""`RedisCacheBackend`: entries on a Redis server, shared by every machine that reaches it. Entries expire
through Redis TTLs; the total size is bounded by the server's maxmemory policy (e.g. allkeys-lru)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cascadeflow.cache.backends import COUNTERS
from cascadeflow.errors import ConfigurationError

CONNECT_TIMEOUT = 2.0
SOCKET_TIMEOUT = 2.0


class RedisCacheBackend:
    name = "redis"

    def __init__(self, client: Any, *, prefix: str = "cascadeflow:cache:", url: str = "redis://"):
        self.client = client
        self.prefix = prefix
        self.url = url

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "cascadeflow:cache:") -> RedisCacheBackend:
        try:
            import redis
        except ImportError as exc:
            raise ConfigurationError('the Redis cache needs the redis client: pip install "cascadeflow[redis]"') \
                from exc
        client = redis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=SOCKET_TIMEOUT)
        parts = urlsplit(url)
        safe = urlunsplit((parts.scheme, parts.hostname or "", parts.path, "", "")) if parts.password else url
        return cls(client, prefix=prefix, url=safe)

    def _entry(self, key: str) -> str:
        return f"{self.prefix}e:{key}"

    def _scope(self, scope: str) -> str:
        return f"{self.prefix}s:{scope}"

    def get(self, key: str) -> bytes | None:
        return self.client.get(self._entry(key))

    def put(self, key: str, value: bytes, ttl: float | None, *, scope: str | None = None,
            vector: bytes | None = None) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.set(self._entry(key), value, px=int(ttl * 1000) if ttl is not None else None)
        if scope is not None and vector is not None:
            pipe.hset(self._scope(scope), key, vector)
            if ttl is not None:  # the scope outlives its newest entry by nothing
                pipe.pexpire(self._scope(scope), int(ttl * 1000))
            else:
                pipe.persist(self._scope(scope))
        pipe.hincrby(f"{self.prefix}stats", "stores", 1)
        pipe.execute()

    def candidates(self, scope: str) -> list[tuple[str, bytes]]:
        vectors = self.client.hgetall(self._scope(scope))
        if not vectors:
            return []
        keys = [k.decode() for k in vectors]
        pipe = self.client.pipeline(transaction=False)
        for k in keys:
            pipe.exists(self._entry(k))
        live = [k for k, present in zip(keys, pipe.execute(), strict=True) if present]
        alive = set(live)
        dead = [k for k in keys if k not in alive]
        if dead:
            self.client.hdel(self._scope(scope), *dead)
        return [(k, vectors[k.encode()]) for k in live]

    def count(self, counters: Mapping[str, int]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for counter, amount in counters.items():
            if amount:
                pipe.hincrby(f"{self.prefix}stats", counter, amount)
        pipe.execute()

    def _keys(self, pattern: str) -> list[bytes]:
        return list(self.client.scan_iter(match=pattern, count=1000))

    def stats(self) -> dict[str, int]:
        raw = self.client.hgetall(f"{self.prefix}stats")
        counters = {k.decode(): int(v) for k, v in raw.items()}
        entries = len(self._keys(f"{self._glob()}e:*"))
        return {"entries": entries, **{c: counters.get(c, 0) for c in COUNTERS}}

    def _glob(self) -> str:
        return "".join(f"[{ch}]" if ch in "*?[]\\" else ch for ch in self.prefix)

    def clear(self) -> int:
        entries = self._keys(f"{self._glob()}e:*")
        others = self._keys(f"{self._glob()}s:*") + [f"{self.prefix}stats".encode()]
        for start in range(0, len(entries + others), 500):
            self.client.delete(*(entries + others)[start:start + 500])
        return len(entries)

    def close(self) -> None:
        self.client.close()
