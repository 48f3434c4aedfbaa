"""The HTTP layer under every remote provider: pooled clients, timeouts, retries with backoff, circuit breakers.

One `httpx.AsyncClient` serves each (process, event loop) so connections are reused across calls and
adapters; `HttpCaller` runs one JSON call (or opens one SSE stream) through the breaker and the retry loop,
and turns transport failures and HTTP error statuses into the typed errors of `cascadeflow.errors`.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

from cascadeflow.errors import (
    AuthenticationError,
    BadRequestError,
    CircuitOpenError,
    ConfigurationError,
    MalformedResponseError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
)
from cascadeflow.models import PROVIDERS

log = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]
# Builds the typed error for an HTTP error status:
# (status, parsed body or None, raw text, headers, request id, model) -> error.
ErrorMapper = Callable[[int, Any, str, httpx.Headers, str | None, str], ProviderError]


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds: `connect` to open a connection, `read` between two received bytes, `total` for the whole call
    including retries and their waits (a Request.timeout overrides `total`)."""

    connect: float = 10.0
    read: float = 120.0
    total: float = 600.0

    def as_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.read, pool=self.connect)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter; a server's Retry-After is obeyed up to `max_retry_after`."""

    max_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 20.0
    max_retry_after: float = 60.0  # a server asking for a longer wait gets the error raised instead

    def backoff(self, retry_number: int, rng: random.Random) -> float:
        return rng.uniform(0.0, min(self.max_delay, self.base_delay * (2 ** retry_number)))


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    failure_threshold: int = 5  # consecutive failed calls that open the breaker
    cooldown: float = 30.0  # seconds open before one probe call is let through


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None when absent or invalid."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class CircuitBreaker:
    """Closed -> open after `failure_threshold` consecutive failures -> half-open after `cooldown` (one probe)
    -> closed on the probe's success, open again on its failure."""

    def __init__(self, settings: BreakerSettings, clock: Clock = time.monotonic):
        self.settings = settings
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.settings.cooldown:
            return "half_open"
        return "open"

    def before_call(self, provider: str, model: str) -> None:
        """Raise CircuitOpenError unless a call may go out now."""
        with self._lock:
            if self._opened_at is None:
                return
            waited = self._clock() - self._opened_at
            if waited >= self.settings.cooldown and not self._probing:
                self._probing = True
                return
            reopens_in = max(0.0, self.settings.cooldown - waited)
        raise CircuitOpenError(
            f"circuit open after {self.settings.failure_threshold} consecutive failures; "
            f"next probe in {reopens_in:.1f}s", reopens_in=reopens_in, provider=provider, model=model)

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._probing = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._probing or self._failures >= self.settings.failure_threshold:
                self._opened_at = self._clock()
            self._probing = False

    def release_probe(self) -> None:
        """A probe that ended without a verdict (cancelled, client error) lets the next call probe instead."""
        with self._lock:
            self._probing = False


class CircuitBreakers:
    """One breaker per (provider, model), created on first use."""

    def __init__(self, settings: BreakerSettings | None = None, clock: Clock = time.monotonic):
        self.settings = settings or BreakerSettings()
        self._clock = clock
        self._breakers: dict[tuple[str, str], CircuitBreaker] = {}
        self._lock = threading.Lock()

    def get(self, provider: str, model: str) -> CircuitBreaker:
        key = (provider, model)
        with self._lock:
            breaker = self._breakers.get(key)
            if breaker is None:
                breaker = self._breakers[key] = CircuitBreaker(self.settings, self._clock)
            return breaker


DEFAULT_BREAKERS = CircuitBreakers()


class ClientPool:
    """One AsyncClient per event loop (a client's connections belong to the loop that opened them)."""

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None,
                 limits: httpx.Limits | None = None):
        self._transport = transport
        self._limits = limits or httpx.Limits(max_connections=200, max_keepalive_connections=50)
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary())
        self._lock = threading.Lock()

    def client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        found = self._clients.get(loop)
        if found is not None and not found.is_closed:
            return found
        with self._lock:
            # An idle connection references its loop, so the weak keys alone would not let go of clients of
            # closed loops: drop those here (the slow path runs once per new loop).
            for stale in [lp for lp in self._clients if lp.is_closed()]:
                del self._clients[stale]
            found = self._clients[loop] = httpx.AsyncClient(transport=self._transport, limits=self._limits)
            return found

    def __len__(self) -> int:
        return len(self._clients)


DEFAULT_POOL = ClientPool()


@dataclass(frozen=True)
class HttpOptions:
    """How an adapter talks HTTP. Tests inject `transport`, `sleep`, `rng` and `breakers` (with a clock)."""

    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breakers: CircuitBreakers | None = None  # None: the process-wide DEFAULT_BREAKERS
    transport: httpx.AsyncBaseTransport | None = None  # None: the process-wide pooled clients
    sleep: Sleep = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random)
    # An answer larger than this is cut and treated as malformed, so a host cannot make us buffer without bound.
    # 10 MiB holds a 100k-token answer with top-20 logprobs in JSON; raise it for larger ones.
    max_response_bytes: int = 10 * 2**20

    def __post_init__(self) -> None:
        if isinstance(self.max_response_bytes, bool) or not isinstance(self.max_response_bytes, int) \
                or self.max_response_bytes <= 0:
            raise ConfigurationError(f"max_response_bytes must be a positive integer, got {self.max_response_bytes!r}")


def _transport_error(exc: httpx.TransportError, provider: str, model: str) -> ProviderError:
    if isinstance(exc, httpx.TimeoutException):
        return ProviderTimeoutError(f"{type(exc).__name__}: no answer in time", provider=provider, model=model)
    if isinstance(exc, httpx.RemoteProtocolError):
        return MalformedResponseError(f"connection broke mid-response ({type(exc).__name__})",
                                      provider=provider, model=model)
    return ProviderConnectionError(f"cannot reach the host ({type(exc).__name__})", provider=provider, model=model)


def _counts_against_breaker(exc: BaseException) -> bool:
    # Throttling and client errors say nothing about the host's health; outages and garbage do.
    return isinstance(exc, (ServerError, ProviderTimeoutError, ProviderConnectionError, MalformedResponseError))


class HttpCaller:
    """Sends one call for one (provider, model) through breaker, retries and timeouts."""

    def __init__(self, provider: str, options: HttpOptions, map_error: ErrorMapper,
                 request_id_header: str = "x-request-id", auth: Callable[[], dict[str, str]] | None = None):
        self.provider = provider
        # Auth headers are built per request from the Secret, so no long-lived object holds the plain key.
        self._auth = auth
        self.options = options
        self._map_error = map_error
        self._request_id_header = request_id_header
        self._pool = ClientPool(options.transport) if options.transport is not None else DEFAULT_POOL
        self._timeout = options.timeouts.as_httpx()
        self._breakers = options.breakers or DEFAULT_BREAKERS

    async def post_json(self, url: str, body: Mapping[str, Any], headers: Mapping[str, str], *, model: str,
                        parse: Callable[[Any, httpx.Headers], T], timeout: float | None = None) -> T:
        """POST `body` and return `parse(JSON, headers)`; a body that is not JSON or that `parse` rejects with
        MalformedResponseError counts as a failed attempt (retried, breaker-counted)."""

        async def once() -> T:
            response = await self._send(url, body, headers, model, stream=True)
            try:
                raw = await self.read_capped(response, model)
            finally:
                await response.aclose()
            try:
                data = json.loads(raw)
            except ValueError:
                raise MalformedResponseError(f"the body is not JSON: {raw[:120]!r}", provider=self.provider,
                                             model=model, status_code=response.status_code,
                                             request_id=self.request_id(response.headers)) from None
            return parse(data, response.headers)

        return await self.run(once, model=model, timeout=timeout)

    @asynccontextmanager
    async def open_stream(self, url: str, body: Mapping[str, Any], headers: Mapping[str, str], *,
                          model: str, timeout: float | None = None) -> AsyncIterator[httpx.Response]:
        """Open a streamed POST whose status is 2xx (retrying failures before the first byte); the response
        is closed on exit, including when the consuming task is cancelled."""
        response = await self.run(lambda: self._send(url, body, headers, model, stream=True), model=model,
                                  timeout=timeout)
        try:
            yield response
        finally:
            await response.aclose()

    def request_id(self, headers: httpx.Headers) -> str | None:
        return headers.get(self._request_id_header)

    async def read_capped(self, response: httpx.Response, model: str) -> bytes:
        """The body, read chunk by chunk; past `max_response_bytes` reading stops with MalformedResponseError."""
        cap = self.options.max_response_bytes
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > cap:
                raise MalformedResponseError(f"the answer is larger than max_response_bytes={cap}; cut",
                                             provider=self.provider, model=model, status_code=response.status_code,
                                             request_id=self.request_id(response.headers))
            chunks.append(chunk)
        return b"".join(chunks)

    async def run(self, once: Callable[[], Awaitable[T]], *, model: str, timeout: float | None = None) -> T:
        """Run `once` until it succeeds, a non-retryable error occurs or attempts/time run out."""
        breaker = self._breakers.get(self.provider, model)
        breaker.before_call(self.provider, model)
        total = timeout or self.options.timeouts.total
        deadline = time.monotonic() + total
        try:
            result = await self._retry_loop(once, model, deadline, total)
        except BaseException as exc:
            if _counts_against_breaker(exc):
                breaker.record_failure()
            else:
                breaker.release_probe()
            raise
        breaker.record_success()
        return result

    async def _retry_loop(self, once: Callable[[], Awaitable[T]], model: str, deadline: float, total: float) -> T:
        policy = self.options.retry
        for attempt in range(policy.max_attempts):
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    return await once()
            except TimeoutError as exc:
                if isinstance(exc, ProviderError):
                    error: ProviderError = exc
                else:
                    raise ProviderTimeoutError(f"total timeout of {total:g}s exceeded", provider=self.provider,
                                               model=model) from None
            except httpx.TransportError as exc:
                error = _transport_error(exc, self.provider, model)
            except ProviderError as exc:
                error = exc
            wait = self._wait_before_retry(error, attempt, deadline)
            if wait is None:
                raise error
            log.info("retrying %s/%s in %.2fs after %s (attempt %d of %d)", self.provider, model, wait,
                     type(error).__name__, attempt + 1, policy.max_attempts)
            await self.options.sleep(wait)
        raise AssertionError("unreachable: the last attempt either returns or raises")

    def _wait_before_retry(self, error: ProviderError, attempt: int, deadline: float) -> float | None:
        """Seconds to wait before the next attempt, or None when the error must be raised now."""
        policy = self.options.retry
        if not error.retryable or attempt + 1 >= policy.max_attempts:
            return None
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            if retry_after > policy.max_retry_after:
                return None
            wait = retry_after
        else:
            wait = policy.backoff(attempt, self.options.rng)
        if time.monotonic() + wait >= deadline:
            return None
        return wait

    async def _send(self, url: str, body: Mapping[str, Any], headers: Mapping[str, str], model: str,
                    *, stream: bool) -> httpx.Response:
        client = self._pool.client()
        if self._auth is not None:
            headers = {**headers, **self._auth()}
        request = client.build_request("POST", url, json=body, headers=headers,
                                       timeout=self._timeout)
        response = await client.send(request, stream=stream)
        if response.status_code < 400:
            return response
        try:
            raw = (await self.read_capped(response, model)).decode("utf-8", "replace")
        except MalformedResponseError:
            raw = ""  # an error body past the cap: the status alone decides the error
        finally:
            await response.aclose()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        raise self._map_error(response.status_code, parsed, raw, response.headers,
                              self.request_id(response.headers), model)


def status_error(status: int, message: str, headers: httpx.Headers, *, provider: str, model: str,
                 request_id: str | None) -> ProviderError:
    """The generic mapping of an error status; wire adapters handle their special cases first."""
    kw = {"provider": provider, "model": model, "status_code": status, "request_id": request_id}
    if status in (401, 403):
        # The server's text is left out: some servers echo (part of) the key they were sent.
        env = PROVIDERS[provider].key_env if provider in PROVIDERS else None
        where = f"the {env} environment variable or ModelConfig(api_key=...)" if env else "the API key"
        return AuthenticationError(f"authentication failed: check {where}", **kw)
    if status == 429:
        return RateLimitError(f"rate limited: {message}", retry_after=parse_retry_after(headers.get("retry-after")),
                              **kw)
    if status >= 500:
        return ServerError(f"server error: {message}", retry_after=parse_retry_after(headers.get("retry-after")),
                           **kw)
    if status in (408, 409):  # request timeout / conflict: the request itself was fine
        return ServerError(f"transient error: {message}", **kw)
    return BadRequestError(f"request rejected: {message}", **kw)
