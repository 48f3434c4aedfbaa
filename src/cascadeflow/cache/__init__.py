"""The response cache: exact and (opt-in) semantic, on memory, SQLite or Redis.

`CacheConfig` configures it; `ResponseCache` is the lookup/store engine and `open_cache` the process's one
instance per configuration. The pipeline runs it as a step at a call's start and end (`CallCache`, in
runtime/cache_step.py, above this package). See docs/cache.md.
"""

from cascadeflow.cache.config import CacheConfig
from cascadeflow.cache.entry import CachedAnswer
from cascadeflow.cache.key import CacheKeys, cache_keys, canonical_json, route_facts
from cascadeflow.cache.store import ResponseCache, open_cache

__all__ = ["CacheConfig", "CacheKeys", "CachedAnswer", "ResponseCache", "cache_keys", "canonical_json", "open_cache",
           "route_facts"]
