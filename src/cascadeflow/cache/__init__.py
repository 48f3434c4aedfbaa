"""The response cache: exact and (opt-in) semantic, on memory, SQLite or Redis, as a step of the pipeline.

`CacheConfig` configures it; `ResponseCache` is the lookup/store engine; `CallCache` (cache/step.py) is the
pipeline's cache step, which every `Runtime` runs at a call's start and end. See docs/cache.md.
"""

from cascadeflow.cache.config import CacheConfig
from cascadeflow.cache.entry import CachedAnswer
from cascadeflow.cache.key import CacheKeys, cache_keys, canonical_json, route_facts
from cascadeflow.cache.step import CallCache, open_cache
from cascadeflow.cache.store import ResponseCache

__all__ = ["CacheConfig", "CacheKeys", "CachedAnswer", "CallCache", "ResponseCache", "cache_keys", "canonical_json",
           "open_cache", "route_facts"]
