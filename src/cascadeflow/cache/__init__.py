"""The response cache: exact and (opt-in) semantic, on memory, SQLite or Redis, as a step of the pipeline.

`CacheConfig` configures it; `ResponseCache` is the lookup/store engine; `cascadeflow.cache.step` is what
the facades call before reserving anything and after an answer arrives. See docs/cache.md.
"""

from cascadeflow.cache.config import CacheConfig
from cascadeflow.cache.entry import CachedAnswer
from cascadeflow.cache.key import CacheKeys, cache_keys, canonical_json, route_facts
from cascadeflow.cache.step import open_cache
from cascadeflow.cache.store import ResponseCache

__all__ = ["CacheConfig", "CacheKeys", "CachedAnswer", "ResponseCache", "cache_keys", "canonical_json",
           "open_cache", "route_facts"]
