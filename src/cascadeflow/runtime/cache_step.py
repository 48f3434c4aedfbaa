"""The cache step of the pipeline, `CallCache`: every `Runtime` holds one (a `CacheStep`). At a call's start
(`Runtime.from_cache`), before anything is reserved or sent, it serves a stored answer (a hit costs $0,
reserves nothing and writes an audit record marked `cache_hit` with the cost it saved); at the call's end
(`Runtime.finish`) it stores the final answer. CascadeAgent, CascadeFlow and instrumented SDK calls all
pass through these two places; none of them touches the cache otherwise.

In observe mode a would-be hit is recorded (a `cache_hit` decision with applied=False and the cost it would
have saved) and the call proceeds unchanged.

What `cascadeflow.init()` configured for calls without a cache or a run scope of their own (its cache, its
mode) is handed to this module by the harness (`set_cache_defaults`), which sits above the pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cascadeflow.cache.config import CacheConfig
from cascadeflow.cache.entry import CachedAnswer
from cascadeflow.cache.key import Uncacheable, cache_keys, route_facts
from cascadeflow.cache.store import Probe, ResponseCache
from cascadeflow.messages import Request, Response
from cascadeflow.models import ModelConfig
from cascadeflow.pricing import to_micro_usd
from cascadeflow.runtime.call import AttemptRecord, CallContext
from cascadeflow.trace.records import AuditRecord

CACHE_HIT = "cache_hit"  # the audit record's action and the decision's action for a served answer
STORABLE_FINISH = ("stop", "length", "tool_calls")  # a filtered or failed answer is never stored


@dataclass(frozen=True, slots=True)
class CacheDefaults:
    """What `cascadeflow.init()` configured, as the cache step reads it: `cache`, the response cache of calls
    whose facade has none (`init(cache_config=...)`); `observe`, whether a call outside any run scope only
    records a would-be hit (`init(mode="observe")`)."""

    cache: ResponseCache | None = None
    observe: bool = False


_defaults = CacheDefaults()  # replaced whole by the harness on init() and reset(): readers never see half of it


def set_cache_defaults(defaults: CacheDefaults) -> None:
    """Called by the harness whenever `init()` or `reset()` changes its configuration."""
    global _defaults
    _defaults = defaults


def cache_defaults() -> CacheDefaults:
    return _defaults


@dataclass(slots=True, kw_only=True)
class Served:
    """A hit that was served: the stored answer, how it matched, and the call's audit record."""

    answer: CachedAnswer
    kind: str
    similarity: float | None
    record: AuditRecord


def _scope_values(config: CacheConfig, call: CallContext) -> dict[str, Any] | None:
    values: dict[str, Any] = {}
    for name in config.scope_by:
        if name == "user":
            value = call.user_id
        elif name == "agent":
            value = call.agent_id
        else:
            value = call.metadata.get(name)
        if value is None:
            return None
        values[name] = value
    return values


def _observing(call: CallContext) -> bool:
    if call.scope is not None:
        return call.mode == "observe"
    return call.mode == "observe" or _defaults.observe


def _serve(cache: ResponseCache, runtime: Any, call: CallContext, request: Request, tiers: Sequence[ModelConfig],
           quality: Any = None) -> tuple[Probe | None, Served | None]:
    """Look the request up. Returns (probe to `_remember()` with, None when bypassed; the served hit or None)."""
    scope = _scope_values(cache.config, call)
    if scope is None:
        call.decide("allow", f"cache bypassed: the call has no {'/'.join(cache.config.scope_by)} to scope by",
                    applied=False)
        return None, None
    try:
        keys = cache_keys(request, route_facts(tiers, quality), scope)
    except Uncacheable as exc:
        call.decide("allow", f"cache bypassed: {exc}", applied=False)
        return None, None
    probe = cache.lookup(keys)
    answer = probe.answer
    if answer is None:
        cache.count({"misses": 1})
        call.metadata["cache"] = {"hit": False}  # the audit log can tell misses from uncached calls
        return probe, None
    info: dict[str, Any] = {"kind": probe.kind, "saved_usd": float(answer.cost), "tier": answer.tier,
                            "model": answer.model, "similarity": probe.similarity}
    if _observing(call):
        cache.count({"observed_hits": 1, "misses": 1})
        call.decide(CACHE_HIT, f"observe: a {probe.kind} cache hit would have saved ${answer.cost:.6f}",
                    model_used=answer.model, applied=False, **info)
        call.metadata["cache"] = {"hit": False, "would_hit": True, **info}
        probe.answer = None  # the provider's fresh answer replaces the stored one
        return probe, None
    cache.count({"hits": 1, "semantic_hits": int(probe.kind == "semantic"),
                 "saved_micro_usd": to_micro_usd(answer.cost)})
    call.decide(CACHE_HIT, f"{probe.kind} cache hit: served the stored answer of {answer.model}, "
                           f"saving ${answer.cost:.6f}", model_used=answer.model, **info)
    call.metadata["cache"] = {"hit": True, **info}
    if call.request is None:
        call.request = request
    record = runtime.finish(call, action=CACHE_HIT, model_selected=answer.model, response=answer.response())
    return probe, Served(answer=answer, kind=probe.kind or "exact", similarity=probe.similarity,
                         record=record)


def _remember(cache: ResponseCache, probe: Probe, response: Response, *, model: str, cost: Decimal,
              tier: int) -> bool:
    """Store a call's final answer under the probe's keys (errors are never stored; answers calling tools
    only with `cache_tool_calls`; answers whose usage the provider did not report, such as an observed stream
    that asked for none, are not: the usage a hit reports and the cost it saves would be guesses). True when
    stored."""
    if response.finish_reason not in STORABLE_FINISH or response.usage.estimated:
        return False
    if response.tool_calls and not cache.config.cache_tool_calls:
        return False
    return cache.store(probe, CachedAnswer.from_response(response, model=model, cost=cost, tier=tier))


def _answering_tier(attempts: Sequence[AttemptRecord], model: str) -> int:
    """The tier whose answer the call returned: the last answered attempt of `model` (a cascade's accepted
    or final tier), else the last attempt's."""
    for attempt in reversed(attempts):
        if attempt.model == model and attempt.status == "ok":
            return attempt.tier
    return attempts[-1].tier if attempts else 0


class CallCache:
    """The pipeline's response cache step (the `CacheStep` a `Runtime` holds). Stateless: which cache a call
    uses is chosen per call (a facade's own, else the one `cascadeflow.init(cache_config=...)` configured),
    and a missed lookup travels on the call (`call.cache_probe`) to its end."""

    def cache_for(self, cache: ResponseCache | None) -> ResponseCache | None:
        """The cache a call uses: its facade's own, else the one `cascadeflow.init(cache_config=...)` set."""
        return cache if cache is not None else _defaults.cache

    def serve(self, runtime: Any, call: CallContext, request: Request, route: Sequence[ModelConfig], *,
              quality: Any = None, cache: ResponseCache | None = None) -> Served | None:
        """Look up `request` (as it would be sent, after the policy) along `route` in `cache`."""
        cache = self.cache_for(cache)
        if cache is None:
            return None
        probe, served = _serve(cache, runtime, call, request, route, quality)
        if served is None and probe is not None:
            call.cache_probe = (cache, probe)
        return served

    def remember(self, call: CallContext, response: Response, model_selected: str | None) -> bool:
        if call.cache_probe is None:
            return False
        (cache, probe), call.cache_probe = call.cache_probe, None
        model = model_selected or f"{response.provider}/{response.model}"
        return _remember(cache, probe, response, model=model, cost=call.spent,
                         tier=_answering_tier(call.attempts, model))
