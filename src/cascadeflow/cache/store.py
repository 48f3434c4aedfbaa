"""`ResponseCache`: looks answers up by exact key, then (opt-in) by meaning, and stores new ones;
`open_cache`: the one `ResponseCache` a process keeps per configuration.

A cache that cannot be reached never fails a call: a lookup error counts as a miss and a store error is
logged, because the provider can still answer (and an answer already paid for must reach the caller).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from cascadeflow.cache.backends import CacheBackend, open_backend
from cascadeflow.cache.config import CacheConfig
from cascadeflow.cache.entry import CachedAnswer
from cascadeflow.cache.key import CacheKeys
from cascadeflow.embeddings import INSTALL_HINT, EmbeddingsUnavailable
from cascadeflow.errors import ConfigurationError

if TYPE_CHECKING:
    from cascadeflow.cache.semantic import SemanticIndex

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Probe:
    """One lookup: its keys, what it found, and the query's vector (reused when the answer is stored)."""

    keys: CacheKeys
    answer: CachedAnswer | None = None
    kind: Literal["exact", "semantic"] | None = None
    similarity: float | None = None
    vector: Any = None


class ResponseCache:
    """The configured backend plus, when `config.semantic`, the semantic index. Share one per process."""

    def __init__(self, config: CacheConfig, *, backend: CacheBackend | None = None):
        self.config = config
        self.backend = backend if backend is not None else open_backend(config)
        self._index: SemanticIndex | None = None
        if config.semantic:
            self.index  # noqa: B018 - load the model now: a missing extra fails here, not on the first call

    @property
    def index(self) -> SemanticIndex | None:
        if not self.config.semantic:
            return None
        if self._index is None:
            try:
                from cascadeflow.cache.semantic import SemanticIndex
            except ImportError as exc:  # numpy: the embeddings extra brings it
                raise EmbeddingsUnavailable(f"the semantic cache needs numpy: {INSTALL_HINT}") from exc
            embedder = self.config.embedder
            if embedder is None:
                from cascadeflow.embeddings import default_embedder

                embedder = default_embedder()
            self._index = SemanticIndex(embedder, similarity=self.config.similarity)
        return self._index

    def _scope(self, keys: CacheKeys) -> str:
        index = self.index
        model = getattr(index.embedder, "model_id", "embedder") if index is not None else ""
        return f"{model}:{keys.semantic_scope}"

    def lookup(self, keys: CacheKeys) -> Probe:
        probe = Probe(keys)
        try:
            raw = self.backend.get(keys.exact)
            if raw is not None:
                probe.answer, probe.kind = CachedAnswer.from_bytes(raw), "exact"
                return probe
            index = self.index
            if index is None or keys.last_user_text is None:
                return probe
            probe.vector = index.vector(keys.last_user_text)
            found = index.best(probe.vector, self.backend.candidates(self._scope(keys)))
            if found is not None:
                raw = self.backend.get(found[0])
                if raw is not None:
                    probe.answer, probe.kind, probe.similarity = CachedAnswer.from_bytes(raw), "semantic", found[1]
        except Exception:  # a broken cache is a miss, never a failed call
            log.warning("response cache lookup failed (%s backend); treated as a miss", self.backend.name,
                        exc_info=True)
            probe.answer = probe.kind = None
        return probe

    def store(self, probe: Probe, answer: CachedAnswer) -> bool:
        """Keep `answer` under the probe's keys; False (logged) when the backend refused."""
        try:
            vector = None
            index = self.index
            if index is not None and probe.keys.last_user_text is not None:
                if probe.vector is None:
                    probe.vector = index.vector(probe.keys.last_user_text)
                vector = probe.vector.tobytes()
            self.backend.put(probe.keys.exact, answer.to_bytes(), self.config.ttl,
                             scope=self._scope(probe.keys) if vector is not None else None, vector=vector)
            return True
        except Exception:
            log.warning("response cache store failed (%s backend); the answer was returned uncached",
                        self.backend.name, exc_info=True)
            return False

    def count(self, counters: Mapping[str, int]) -> None:
        try:
            self.backend.count(counters)
        except Exception:
            log.warning("response cache counters %s not updated (%s backend)", sorted(counters),
                        self.backend.name, exc_info=True)

    def stats(self) -> dict[str, Any]:
        raw = self.backend.stats()
        lookups = raw["hits"] + raw["misses"]
        return {**raw, "backend": self.backend.name, "hit_rate": raw["hits"] / lookups if lookups else 0.0,
                "saved_usd": raw["saved_micro_usd"] / 1_000_000}

    def clear(self) -> int:
        return self.backend.clear()

    def close(self) -> None:
        self.backend.close()


_caches: dict[CacheConfig, ResponseCache] = {}  # one cache per configuration and process
_caches_lock = threading.Lock()


def open_cache(config: CacheConfig | ResponseCache | None) -> ResponseCache | None:
    """The process's `ResponseCache` for `config` (built once; equal configs share it)."""
    if config is None or isinstance(config, ResponseCache):
        return config
    if not isinstance(config, CacheConfig):
        raise ConfigurationError(f"cache_config must be a CacheConfig, got {type(config).__name__}")
    if not config.enabled:
        return None
    try:
        hash(config)
    except TypeError:  # an unhashable embedder: this configuration gets a cache of its own
        return ResponseCache(config)
    with _caches_lock:
        cache = _caches.get(config)
        if cache is None:
            cache = _caches[config] = ResponseCache(config)
        return cache
