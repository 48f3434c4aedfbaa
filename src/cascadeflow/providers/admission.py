"""Admission control in front of each provider: a bounded number of requests in flight, a priority queue that
is first-in first-out within a priority, and the provider's rate limits (requests and tokens per minute)
applied before a request is sent.

A call waits here, not in the HTTP client's connection pool, so a storm of thousands of calls costs one heap
entry per waiting call instead of a scan of the pool per connection event. The time a call waits is reported
separately from the provider's latency; a call whose deadline passes while it waits is refused with
`AdmissionRefused` (nothing was sent, so nothing is charged) and does not count against the circuit breaker.
With a `DeferPolicy`, a low-severity call that meets a long queue does not wait at all: it is refused with
`CallDeferred` and the pipeline stores it in the durable deferred queue, so the higher severities go first.

Gates are shared by every event loop of the process (the sync twins run on a background loop): the state is
guarded by a thread lock and a waiter on another loop is woken through that loop.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cascadeflow.errors import AdmissionRefused, CallDeferred, ConfigurationError

Clock = Callable[[], float]  # monotonic seconds

# Severity labels -> priority (lower goes first). P0/P1 and critical/high jump the queue; unknown labels and
# calls without a severity are treated as P2.
_SEVERITY_PRIORITY = {"P0": 0, "P1": 1, "P2": 2, "P3": 3, "P4": 4, "P5": 5,
                      "CRITICAL": 0, "SEV0": 0, "SEV1": 0, "HIGH": 1, "SEV2": 1, "MEDIUM": 2, "WARNING": 2,
                      "SEV3": 2, "LOW": 3, "SEV4": 3, "INFO": 4}
DEFAULT_PRIORITY = 2


def priority_of(metadata: Mapping[str, Any] | None, key: str = "severity") -> int:
    """The queue priority of a call from its metadata's severity (P0 -> 0 ... unknown or absent -> 2)."""
    if not metadata:
        return DEFAULT_PRIORITY
    label = metadata.get(key)
    if label is None:
        return DEFAULT_PRIORITY
    return _SEVERITY_PRIORITY.get(str(label).strip().upper(), DEFAULT_PRIORITY)


def _positive(name: str, value: Any, *, integer: bool = False, optional: bool = True) -> None:
    if value is None and optional:
        return
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or not math.isfinite(value) or value <= 0:
        kind = "a positive integer" if integer else "a positive finite number"
        raise ConfigurationError(f"{name} must be {kind}, got {value!r}")


@dataclass(frozen=True, slots=True)
class AdmissionLimits:
    """Per provider (and per model where its limits differ): at most `max_in_flight` requests on the wire;
    `requests_per_minute` / `tokens_per_minute` pace requests before they are sent (None: learned from the
    provider's rate-limit headers, or unpaced). Tokens are counted as the input bound plus max_tokens."""

    max_in_flight: int = 64
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None

    def __post_init__(self) -> None:
        _positive("max_in_flight", self.max_in_flight, integer=True, optional=False)
        _positive("requests_per_minute", self.requests_per_minute)
        _positive("tokens_per_minute", self.tokens_per_minute)


@dataclass(frozen=True, slots=True)
class DeferPolicy:
    """When to defer instead of queueing: a call of priority `from_priority` or lower (P3, low, info by
    default) that finds `when_queued` or more calls already waiting for its provider is stored in `queue` (a
    `DeferredQueue`) rather than waiting. Drain the queue (`DeferredQueue.adrain`) when the storm is over."""

    queue: Any
    when_queued: int = 64
    from_priority: int = 3

    def __post_init__(self) -> None:
        if not callable(getattr(self.queue, "enqueue", None)):
            raise ConfigurationError(f"DeferPolicy.queue must be a DeferredQueue, got {type(self.queue).__name__}")
        _positive("when_queued", self.when_queued, integer=True, optional=False)
        if isinstance(self.from_priority, bool) or not isinstance(self.from_priority, int) \
                or self.from_priority < 0:
            raise ConfigurationError(f"from_priority must be a priority (0 for P0, 1 for P1, ...), got "
                                     f"{self.from_priority!r}")


class TokenBucket:
    """A bucket refilled at `per_minute / 60` per second up to `per_minute`; `take(n)` returns the seconds
    until `n` is covered (the bucket may go into debt, so callers are paced in the order they took)."""

    def __init__(self, *, per_minute: float, clock: Clock = time.monotonic):
        self.per_minute = per_minute
        self._level = per_minute
        self._clock = clock
        self._at = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._level = min(self.per_minute, self._level + (now - self._at) * self.per_minute / 60.0)
        self._at = now

    def take(self, amount: float) -> float:
        self._refill()
        self._level -= amount
        return 0.0 if self._level >= 0 else -self._level * 60.0 / self.per_minute

    def give_back(self, amount: float) -> None:
        self._level = min(self.per_minute, self._level + amount)

    def observe(self, limit: float | None, remaining: float | None) -> None:
        """Align with what the provider reported: its limit, and what is left of it."""
        if limit is not None and limit > 0:
            self.per_minute = limit
        if remaining is not None:
            self._refill()
            self._level = min(self._level, remaining)


def _bucket(per_minute: float | None, clock: Clock) -> TokenBucket | None:
    return TokenBucket(per_minute=per_minute, clock=clock) if per_minute else None


class _Waiter:
    """A queued call: a coroutine waiting on a future of its loop, or a thread (loop None) on an event."""

    __slots__ = ("event", "future", "gone", "granted", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop | None):
        self.loop = loop
        self.future: asyncio.Future[None] | None = loop.create_future() if loop is not None else None
        self.event: threading.Event | None = threading.Event() if loop is None else None
        self.granted = False
        self.gone = False

    def wake(self) -> bool:
        """Hand it the slot; False when its loop has closed (nobody is waiting there any more)."""
        if self.event is not None:
            self.event.set()
        elif self.loop is _running_loop():
            _wake(self.future)
        else:
            try:
                self.loop.call_soon_threadsafe(_wake, self.future)  # type: ignore[union-attr]
            except RuntimeError:
                return False
        return True


def _wake(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


class Gate:
    """One provider's (or model's) admission: in-flight slots, the priority queue and the rate buckets."""

    def __init__(self, *, limits: AdmissionLimits, clock: Clock = time.monotonic, defer: DeferPolicy | None = None):
        self.limits = limits
        self.defer = defer
        self._clock = clock
        self._lock = threading.Lock()
        self._in_flight = 0
        self._queue: list[tuple[int, int, _Waiter]] = []
        self._order = itertools.count()
        self._requests = _bucket(limits.requests_per_minute, clock)
        self._tokens = _bucket(limits.tokens_per_minute, clock)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def queued(self) -> int:
        return sum(1 for _, _, w in self._queue if not w.gone)

    async def acquire(self, *, priority: int, deadline: float, tokens: Callable[[], int] | None = None,
                      what: str = "", may_defer: bool = True) -> float:
        """Wait for a slot (and the rate limits); return the seconds waited. `tokens` counts the call's tokens
        for a tokens-per-minute limit (called only when one applies). Raises AdmissionRefused when the
        deadline (time.monotonic()) would pass first; the slot is then not taken. Raises CallDeferred instead
        of waiting when the DeferPolicy says so (and `may_defer`)."""
        started = self._clock()
        waiter = self._enter(priority, asyncio.get_running_loop(), what, may_defer)
        if waiter is not None:
            await self._wait_turn(waiter, deadline, what)
        try:
            wait = self._pace_wait(tokens, deadline, what)
            if wait:
                await asyncio.sleep(wait)
        except BaseException:
            self.release()
            raise
        return self._clock() - started if waiter is not None or wait else 0.0

    def acquire_blocking(self, *, priority: int, deadline: float, what: str = "",
                         may_defer: bool = True) -> float:
        """`acquire` for a synchronous caller: blocks its thread (never a running event loop's: a call made
        synchronously inside a loop is admitted without waiting, since blocking the loop would keep the
        calls holding the slots from finishing)."""
        started = self._clock()
        if _running_loop() is not None:
            with self._lock:
                self._in_flight += 1
            return 0.0
        waiter = self._enter(priority, None, what, may_defer)
        if waiter is not None and not waiter.event.wait(max(0.0, deadline - time.monotonic())):  # type: ignore[union-attr]
            with self._lock:
                granted = waiter.granted
                waiter.gone = True
            if not granted:
                raise AdmissionRefused(f"{what}: still queued behind {self.limits.max_in_flight} requests in "
                                       f"flight when its deadline passed; nothing was sent")
        try:
            wait = self._pace_wait(None, deadline, what)
            if wait:
                time.sleep(wait)
        except BaseException:
            self.release()
            raise
        return self._clock() - started if waiter is not None or wait else 0.0

    def _enter(self, priority: int, loop: asyncio.AbstractEventLoop | None, what: str,
               may_defer: bool) -> _Waiter | None:
        """Take a free slot (None), or queue a waiter; raise CallDeferred when the call is deferred instead."""
        with self._lock:
            while self._queue and self._queue[0][2].gone:  # left by callers that timed out or were cancelled
                heapq.heappop(self._queue)
            if self._in_flight < self.limits.max_in_flight and not self._queue:
                self._in_flight += 1
                return None
            defer = self.defer
            if may_defer and defer is not None and priority >= defer.from_priority \
                    and len(self._queue) >= defer.when_queued:
                raise CallDeferred(f"{what}: {len(self._queue)} calls already queued for admission; this "
                                   f"priority-{priority} call is deferred instead of waiting",
                                   priority=priority, queued=len(self._queue), queue=defer.queue)
            waiter = _Waiter(loop)
            heapq.heappush(self._queue, (priority, next(self._order), waiter))
            return waiter

    async def _wait_turn(self, waiter: _Waiter, deadline: float, what: str) -> None:
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                await waiter.future  # type: ignore[misc]  # a coroutine's waiter always has its future
        except BaseException as exc:
            with self._lock:
                granted = waiter.granted
                waiter.gone = True
            if granted and not isinstance(exc, TimeoutError):
                self.release()  # cancelled just after being handed a slot: pass it on
            elif granted:
                return  # the slot arrived as the deadline did: use it
            if isinstance(exc, TimeoutError):
                raise AdmissionRefused(f"{what}: still queued behind {self.limits.max_in_flight} requests in "
                                       f"flight when its deadline passed; nothing was sent") from None
            raise

    def _pace_wait(self, count_tokens: Callable[[], int] | None, deadline: float, what: str) -> float:
        """Take from the rate buckets; the seconds to wait before sending (0.0: send now)."""
        if self._requests is None and self._tokens is None:
            return 0.0
        tokens = count_tokens() if self._tokens is not None and count_tokens is not None else 0
        with self._lock:
            wait = 0.0
            if self._requests is not None:
                wait = max(wait, self._requests.take(1))
            if self._tokens is not None and tokens:
                wait = max(wait, self._tokens.take(tokens))
            if wait and time.monotonic() + wait >= deadline:
                self._give_back(tokens)
                raise AdmissionRefused(f"{what}: the provider's rate limit allows it in {wait:.1f}s, after its "
                                       f"deadline; nothing was sent")
        return wait

    def _give_back(self, tokens: int) -> None:
        if self._requests is not None:
            self._requests.give_back(1)
        if self._tokens is not None and tokens:
            self._tokens.give_back(tokens)

    def release(self) -> None:
        """Free a slot: hand it to the first waiter still waiting, highest priority first."""
        with self._lock:
            while self._queue:
                _, _, waiter = heapq.heappop(self._queue)
                if waiter.gone or not waiter.wake():
                    continue
                waiter.granted = True
                return
            self._in_flight -= 1

    def observe_headers(self, headers: Mapping[str, str]) -> None:
        """Learn the provider's rate limits from its response headers (OpenAI-style `x-ratelimit-*` and
        Anthropic-style `anthropic-ratelimit-*`), unless limits were configured."""
        found = rate_limit_headers(headers)
        if not found:
            return
        with self._lock:
            for kind, (limit, remaining) in found.items():
                configured = (self.limits.requests_per_minute if kind == "requests"
                              else self.limits.tokens_per_minute)
                bucket = self._requests if kind == "requests" else self._tokens
                if bucket is None:
                    if configured is not None or limit is None:
                        continue
                    bucket = TokenBucket(per_minute=limit, clock=self._clock)
                    if kind == "requests":
                        self._requests = bucket
                    else:
                        self._tokens = bucket
                bucket.observe(None if configured is not None else limit, remaining)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


_HEADER_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-")


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def rate_limit_headers(headers: Mapping[str, str]) -> dict[str, tuple[float | None, float | None]]:
    """{"requests"|"tokens": (limit, remaining)} from the rate-limit headers present (both spellings:
    `x-ratelimit-limit-requests` and `anthropic-ratelimit-requests-limit`)."""
    found: dict[str, tuple[float | None, float | None]] = {}
    # One pass over the headers (most answers carry none of these), then lookups in a plain dict: a
    # case-insensitive headers object scans all its headers on every lookup, sixteen of them here.
    headers = {name.lower(): value for name, value in headers.items() if "ratelimit" in name.lower()}
    if not headers:
        return found
    for kind in ("requests", "tokens"):
        for prefix in _HEADER_PREFIXES:
            limit = _number(headers.get(f"{prefix}limit-{kind}") or headers.get(f"{prefix}{kind}-limit"))
            remaining = _number(headers.get(f"{prefix}remaining-{kind}")
                                or headers.get(f"{prefix}{kind}-remaining"))
            if limit is not None or remaining is not None:
                found[kind] = (limit, remaining)
                break
    return found


class Admission:
    """The gates of the process, one per (provider, model group), created on first use with the limits
    configured for that provider or model (a model's own limits take precedence)."""

    def __init__(self, *, default: AdmissionLimits | None = None, clock: Clock = time.monotonic,
                 defer: DeferPolicy | None = None):
        if defer is not None and not isinstance(defer, DeferPolicy):
            raise ConfigurationError(f"defer must be a DeferPolicy, got {type(defer).__name__}")
        self.default = default or AdmissionLimits()
        self.defer = defer
        self._clock = clock
        self._configured: dict[tuple[str, str | None], AdmissionLimits] = {}
        self._gates: dict[tuple[str, str | None], Gate] = {}
        self._lock = threading.Lock()

    def configure(self, provider: str, limits: AdmissionLimits, *, model: str | None = None) -> None:
        """Set the limits of `provider` (or of one of its models); replaces that gate for new calls."""
        if not isinstance(limits, AdmissionLimits):
            raise ConfigurationError(f"limits must be an AdmissionLimits, got {type(limits).__name__}")
        with self._lock:
            self._configured[(provider, model)] = limits
            self._gates.pop((provider, model), None)

    def gate(self, provider: str, model: str) -> Gate:
        with self._lock:
            key: tuple[str, str | None] = (provider, model) if (provider, model) in self._configured \
                else (provider, None)
            found = self._gates.get(key)
            if found is None:
                limits = self._configured.get(key, self.default)
                found = self._gates[key] = Gate(limits=limits, clock=self._clock, defer=self.defer)
            return found


DEFAULT_ADMISSION = Admission()
