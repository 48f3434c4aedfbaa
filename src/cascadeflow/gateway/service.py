"""`Gateway`: what serving one client call takes, outside any HTTP detail — the key, its limits, the model
name's route and one `CascadeFlow` call (the one pipeline: policy, per-call cap, budgets, cache, provider,
validation, settlement, metrics, audit). Built once from the configuration; the routes only parse and
serialise around it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cascadeflow.flow.client import CascadeFlow, CompletionResult
from cascadeflow.gateway.calls import ClientCall
from cascadeflow.gateway.catalog import Catalog, ServedModel
from cascadeflow.gateway.config import GatewayConfig
from cascadeflow.gateway.keys import (
    RATE_COUNT_RETENTION_SECONDS,
    KeyGate,
    TokenHold,
    VirtualKey,
    rate_ledger_url,
)
from cascadeflow.messages import StreamDone, StreamEvent, Usage
from cascadeflow.runtime.pipeline import Runtime
from cascadeflow.tokens import text_tokens_upper

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Admitted:
    """A call that passed the key, the model check and the rate limits: the arguments of its CascadeFlow call."""

    served: ServedModel
    kwargs: dict[str, Any]
    tokens: TokenHold | None = None  # the key's tokens-per-minute count, settled when the call ends


def _metrics_sink(config: GatewayConfig) -> Any:
    if not config.metrics:
        return None
    from cascadeflow.metrics.prometheus import MetricsCollector

    return MetricsCollector()


class Gateway:
    """The stores, the runtime and the model catalogue of one gateway process."""

    def __init__(self, config: GatewayConfig):
        from cascadeflow.budget.backends import open_ledger
        from cascadeflow.trace.audit import open_sinks

        self.config = config
        self.catalog = Catalog(config)
        self.ledger = open_ledger(config.ledger or "memory://")
        sinks = [] if config.audit == "off" else open_sinks(config.audit)
        self.metrics = _metrics_sink(config)
        if self.metrics is not None:
            sinks.append(self.metrics)
        self.runtime = Runtime(ledger=self.ledger, sinks=sinks)
        cache = None
        if config.cache is not None:
            from cascadeflow.cache.config import CacheConfig

            cache = CacheConfig(**config.cache)
        self.flow = CascadeFlow(runtime=self.runtime, cache_config=cache)
        self.keys: KeyGate | None = None
        self.key_store: Any = None
        if config.keys is not None:
            from cascadeflow.gateway.keystores import open_key_store

            self.key_store = open_key_store(config.keys)
            # per-minute counts: one reservation per request, kept minutes, not the budgets' days
            self.rate_ledger = open_ledger(rate_ledger_url(config.ledger or "memory://"),
                                           retention_seconds=RATE_COUNT_RETENTION_SECONDS)
            self.keys = KeyGate(self.key_store, config.hashing_secret() or "", self.rate_ledger,
                                cache_seconds=config.key_cache_seconds)

    def admit(self, call: ClientCall, token: str | None, api: str) -> Admitted:
        """Everything checked before a call may spend: the key, the model, the rate limits. Raises the typed
        error the client is answered with (KeyRejected, InvalidRequestError, KeyRateLimited)."""
        served = self.catalog.resolve(call.model)
        key: VirtualKey | None = None
        hold: TokenHold | None = None
        if self.keys is not None:
            key = self.keys.authenticate(token)
            self.keys.check_model(key, served.name)
            hold = self.keys.admit(key, _token_bound(call))
        return Admitted(served, self._kwargs(call, served, key, api), hold)

    def _kwargs(self, call: ClientCall, served: ServedModel, key: VirtualKey | None, api: str) -> dict[str, Any]:
        metadata: dict[str, Any] = {**call.metadata, "gateway_model": served.name, "api": api}
        user = call.user
        kwargs: dict[str, Any] = {}
        if key is not None:
            metadata.update(key.metadata)  # the key's team, user and feature win over what the client says
            metadata["key_id"] = key.id
            user = key.metadata.get("user") or user
            kwargs["_charges"] = tuple(self.keys.charges(key)) if self.keys is not None else ()
            if key.per_request_usd is not None:
                kwargs["budget_limit"] = key.per_request_usd
        if served.router is not None:
            kwargs["router"] = served.router
        else:
            kwargs["model"] = list(served.tiers) if len(served.tiers) > 1 else served.tiers[0]
            kwargs["routing_reason"] = served.reason
        if served.quality is not None:
            kwargs["quality_config"] = served.quality
        return {**kwargs, **call.options, "messages": call.messages, "metadata": metadata, "user_id": user}

    async def complete(self, admitted: Admitted) -> CompletionResult:
        try:
            result = await self.flow.acomplete(**admitted.kwargs)
        except BaseException:
            self._settle_tokens(admitted, None)
            raise
        if admitted.tokens is not None:
            self._settle_tokens(admitted, tokens_used(result.tiers, result.usage))
        return result

    async def stream(self, admitted: Admitted) -> AsyncGenerator[StreamEvent, None]:
        """The call's events; its token count is settled once the stream ends (at the bound when it ends
        without its final event: an error, or a client gone mid-stream)."""
        used: int | None = None
        try:
            async with contextlib.aclosing(self.flow.astream(**admitted.kwargs)) as events:
                async for event in events:
                    if isinstance(event, StreamDone):
                        used = event.response.usage.total_tokens
                    yield event
        finally:
            self._settle_tokens(admitted, used)

    def _settle_tokens(self, admitted: Admitted, used: int | None) -> None:
        if admitted.tokens is not None and self.keys is not None:
            self.keys.settle_tokens(admitted.tokens, used)

    def ready(self) -> dict[str, str]:
        """Each shared store's state ("ok" or the error): /ready answers 503 unless all are ok."""
        checks: dict[str, str] = {}
        for name, probe in (("ledger", lambda: self.ledger.states([])),
                            ("keys", self.key_store.ping if self.key_store is not None else None)):
            if probe is None:
                continue
            try:
                probe()
                checks[name] = "ok"
            except Exception as exc:  # noqa: BLE001 - any failure makes the process not ready
                checks[name] = f"{type(exc).__name__}"
        return checks


def tokens_used(tiers: Sequence[Mapping[str, Any]], usage: Usage) -> int:
    """Tokens a call consumed: every tier's input and output (a cascade's escalations count), or the
    answer's usage when no attempt is listed (one model; a cache hit counts the tokens of the answer it
    serves, as its stream's final event reports them)."""
    if not tiers:
        return usage.total_tokens
    return sum(int(t.get("input_tokens") or 0) + int(t.get("output_tokens") or 0) for t in tiers)


def _token_bound(call: ClientCall) -> int:
    """Tokens a call holds against a tokens-per-minute limit at admission: its prompt's bound plus max_tokens."""
    text = "".join(str(m.get("content") or "") for m in call.messages)
    max_tokens = call.options.get("max_tokens")
    return text_tokens_upper(text) + (max_tokens if isinstance(max_tokens, int) else 0)
