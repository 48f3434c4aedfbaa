"""The process-wide harness state: `init()` builds the default Runtime (ledger, audit sinks) and patches the
SDKs, `reset()` restores everything, `default_runtime()` is what CascadeAgent, CascadeFlow and the SDK
instrumentation use when given no Runtime of their own.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from cascadeflow.cache.store import ResponseCache, open_cache
from cascadeflow.harness.config import HarnessConfig, resolve_config
from cascadeflow.harness.stats import ModelStats
from cascadeflow.known_secrets import remember_secret
from cascadeflow.pricing import PriceBook
from cascadeflow.runtime.cache_step import CacheDefaults, cache_defaults, set_cache_defaults
from cascadeflow.runtime.pipeline import Runtime
from cascadeflow.trace.redact import redact_url

log = logging.getLogger(__name__)

_lock = threading.RLock()
_config: HarnessConfig = HarnessConfig()
_runtime: Runtime | None = None
_stats = ModelStats()
_owned_sinks: list[Any] = []


def init(mode: str | None = None, *, config_file: str | os.PathLike[str] | None = None,
         ledger_url: str | None = None, audit: Any = None, compliance: str | None = None,
         record_content: bool | None = None, instrument: bool | None = None,
         allow_cross_provider: bool | None = None, price_book: PriceBook | None = None,
         audit_spool: str | os.PathLike[str] | None = None, cache_config: Any = None,
         compliance_file: str | os.PathLike[str] | None = None) -> HarnessConfig:
    """Configure the harness for this process; arguments beat CASCADEFLOW_MODE beat the config file, and a
    file never weakens an explicit enforce (harness/config.py). `compliance` names a preset; a policy file is
    loaded only as `compliance_file`. `audit_spool`: where records go while an audit sink is failing
    (default: `default_spool_path()`). `cache_config` (a CacheConfig) is the response cache of every
    CascadeAgent / CascadeFlow without one and of instrumented SDK calls."""
    cache = open_cache(cache_config)  # a bad configuration fails here, before any call
    config = resolve_config(mode, config_file=config_file, ledger_url=ledger_url, audit=audit,
                            compliance=compliance, record_content=record_content, instrument=instrument,
                            allow_cross_provider=allow_cross_provider,
                            compliance_file=None if compliance_file is None else os.fspath(compliance_file))
    from cascadeflow.harness.compliance import resolve_compliance

    resolve_compliance(config.compliance, config.compliance_file)  # a bad preset or file fails here
    _remember_provider_keys()
    runtime = _build_runtime(config, price_book, audit_spool)
    with _lock:
        _teardown()  # the previous runtime's sinks; the new ones are owned from here on
        _owned_sinks.extend(runtime.sinks)
        global _config, _runtime
        _config, _runtime = config, runtime
        # the cache step sits below the harness: it is handed what init() configured for calls without their own
        set_cache_defaults(CacheDefaults(cache=cache, observe=config.mode == "observe"))
        if config.instrument and config.mode != "off":
            from cascadeflow.harness.instrument import patch_all

            patch_all()
    log.info("cascadeflow harness: mode=%s (from %s), ledger=%s", config.mode, config.source,
             redact_url(config.ledger_url))
    for name, source in sorted(config.sources.items()):
        log.info("cascadeflow harness: %s from %s", name, source)
    return config


def _remember_provider_keys() -> None:
    """The provider keys in the environment, which the SDKs read by themselves: scrubbed from every error text
    and record from now on, whatever their shape."""
    from cascadeflow.models import PROVIDERS

    for facts in PROVIDERS.values():
        if facts.key_env:
            remember_secret(os.environ.get(facts.key_env))


def _build_runtime(config: HarnessConfig, price_book: PriceBook | None,
                   audit_spool: str | os.PathLike[str] | None = None) -> Runtime:
    from cascadeflow.budget.backends import open_ledger
    from cascadeflow.trace.audit import default_spool_path, open_sinks

    ledger = open_ledger(config.ledger_url)
    sinks: list[Any] = []
    # audited by default, init() or not; only a mode chosen to be "off" (the "no tracking" setting) or
    # audit=False turns it off, and an explicit audit= setting wins over an "off" mode
    chosen_off = config.mode == "off" and config.source != "defaults"
    if config.audit is not False and (not chosen_off or config.audit is not None):
        sinks = open_sinks(config.audit, record_content=config.record_content)
    return Runtime(price_book=price_book, ledger=ledger, sinks=sinks,
                   audit_spool=audit_spool if audit_spool is not None else default_spool_path())


def _teardown() -> None:
    global _runtime
    from cascadeflow.harness.instrument import unpatch_all
    from cascadeflow.harness.instrument.vendor import forget_clients

    unpatch_all()
    forget_clients()  # base URL settings may have changed: SDK clients' vendors are resolved again
    for sink in _owned_sinks:
        close = getattr(sink, "close", None)
        if callable(close):
            try:
                close()
            except Exception:
                log.exception("closing audit sink %r failed", sink)
    _owned_sinks.clear()
    set_cache_defaults(CacheDefaults())  # the cache itself stays open: agents built with the same config may hold it
    if _runtime is not None and hasattr(_runtime.ledger, "close"):
        _runtime.ledger.close()  # type: ignore[union-attr]
    _runtime = None


def reset() -> None:
    """Back to the state before init(): SDKs un-patched, sinks closed, default settings, statistics cleared."""
    global _config
    with _lock:
        _teardown()
        _config = HarnessConfig()
        _stats.clear()


def current_config() -> HarnessConfig:
    return _config


def default_runtime() -> Runtime:
    """The Runtime configured by init() (created with defaults on first use when init() was not called)."""
    global _runtime
    runtime = _runtime
    if runtime is not None:
        return runtime
    with _lock:
        if _runtime is None:
            _runtime = _build_runtime(_config, None)
            _owned_sinks.extend(_runtime.sinks)
        return _runtime


def default_cache() -> ResponseCache | None:
    """The ResponseCache configured by init(cache_config=...), or None."""
    return cache_defaults().cache


def model_stats() -> ModelStats:
    """The measured per-model statistics KPI selection reads."""
    return _stats
