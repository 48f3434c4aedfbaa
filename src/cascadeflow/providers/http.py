"""The HTTP layer under every remote provider: the pooled client, admission, timeouts, retries, breakers.

The pooled aiohttp sessions (providers/pool.py) carry every call; calls wait in the provider's admission gate
(providers/admission.py), not in the pool, so there is no local pool timeout to retry. `HttpCaller` runs one
JSON call (or opens one SSE stream) through the breaker, the gate and the retry loop, lists every HTTP
attempt it made, and turns aiohttp's failures and error statuses into the typed errors of
`cascadeflow.errors`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp

from cascadeflow.errors import (
    AdmissionRefused,
    AuthenticationError,
    BadRequestError,
    BudgetBackendUnavailable,
    BudgetExceeded,
    CallDeferred,
    ConfigurationError,
    MalformedResponseError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
)
from cascadeflow.messages import HttpAttempt
from cascadeflow.models import PROVIDERS, validate_timeout
from cascadeflow.providers.admission import DEFAULT_ADMISSION, Admission
from cascadeflow.providers.breaker import DEFAULT_BREAKERS, BreakerSettings, CircuitBreaker, CircuitBreakers
from cascadeflow.providers.pool import CONNECTION_REUSED, DEFAULT_POOL, ClientPool
from cascadeflow.providers.retry import (
    DEFAULT_RETRY_BUDGETS,
    RetryBudgets,
    RetryPolicy,
    parse_retry_after,
)

__all__ = ["BEFORE_RESEND", "BreakerSettings", "CircuitBreaker", "CircuitBreakers", "ClientPool", "HttpCaller",
           "HttpOptions", "RetryPolicy", "Timeouts", "parse_retry_after", "status_error", "transport_error"]

log = logging.getLogger(__name__)

# Set by the pipeline around a provider call (runtime.resends); called before re-sending after a request of
# unknown outcome. It raises (BudgetExceeded, BudgetBackendUnavailable) when the reservation does not fit:
# the unknown request's error is then raised instead of re-sent.
BEFORE_RESEND: ContextVar[Callable[[], None] | None] = ContextVar("cascadeflow_before_resend", default=None)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
# Builds the typed error for an HTTP error status:
# (status, parsed body or None, raw text, headers, request id, model) -> error. The headers are the
# response's (case-insensitive), or an empty mapping for an error that arrived inside a stream.
ErrorMapper = Callable[[int, Any, str, Mapping[str, str], str | None, str], ProviderError]


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds: `connect` to open a connection, `read` between two received bytes, `total` for the whole call
    including retries and their waits (a Request.timeout overrides `total`)."""

    connect: float = 10.0
    read: float = 120.0
    total: float = 600.0

    def __post_init__(self) -> None:
        for name in ("connect", "read", "total"):
            validate_timeout(f"Timeouts.{name}", getattr(self, name))

    def client_timeout(self) -> aiohttp.ClientTimeout:
        """aiohttp's form: `total` is enforced by the retry loop around every attempt, not by aiohttp."""
        return aiohttp.ClientTimeout(total=None, connect=self.connect, sock_connect=self.connect,
                                     sock_read=self.read)


@dataclass(frozen=True)
class HttpOptions:
    """How an adapter talks HTTP. Tests inject `sleep`, `rng`, `breakers` (with a clock), `admission` and
    `retry_budgets`; None means the process-wide one, shared by every adapter."""

    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breakers: CircuitBreakers | None = None
    admission: Admission | None = None
    retry_budgets: RetryBudgets | None = None
    sleep: Sleep = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random)
    # An answer larger than this is cut and treated as malformed, so a host cannot make us buffer without bound.
    # 10 MiB holds a 100k-token answer with top-20 logprobs in JSON; raise it for larger ones.
    max_response_bytes: int = 10 * 2**20

    def __post_init__(self) -> None:
        if isinstance(self.max_response_bytes, bool) or not isinstance(self.max_response_bytes, int) \
                or self.max_response_bytes <= 0:
            raise ConfigurationError(f"max_response_bytes must be a positive integer, got {self.max_response_bytes!r}")


def transport_error(exc: aiohttp.ClientError, provider: str, model: str) -> ProviderError:
    """The typed error of an aiohttp failure. What matters is whether the request may have reached the
    host: a failure to connect sent nothing (ProviderConnectionError, never billed); a read timeout or a
    connection dropped mid-response leaves the outcome unknown (ProviderTimeoutError / MalformedResponseError,
    charged their worst case by the pipeline)."""
    kw: dict[str, Any] = {"provider": provider, "model": model}
    name = type(exc).__name__
    if isinstance(exc, aiohttp.InvalidURL):
        return ProviderConnectionError(f"the URL cannot be requested ({name}: {exc}); check base_url", **kw)
    # ConnectionTimeoutError is a ServerTimeoutError too: it is tested first
    if isinstance(exc, (aiohttp.ConnectionTimeoutError, aiohttp.ClientConnectorError)):
        return ProviderConnectionError(f"cannot reach the host ({name})", **kw)
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return ProviderTimeoutError(f"{name}: no answer in time", **kw)
    if isinstance(exc, aiohttp.ServerDisconnectedError) and CONNECTION_REUSED.get():
        return StaleConnection("the host closed an idle pooled connection as the request was written; it was "
                               "not processed", **kw)
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError)):
        return MalformedResponseError(f"connection broke mid-response ({name})", **kw)
    return MalformedResponseError(f"the connection failed after sending ({name})", **kw)


class StaleConnection(ProviderConnectionError):
    """A pooled connection the host had closed while idle: re-sent at once on another connection, outside
    the retry budget and the attempt count, and never counted against the breaker (it says nothing about
    the host's health)."""


MAX_STALE_RESENDS = 8  # a storm after a pause may meet several stale connections in a row; each is dropped


def _counts_against_breaker(exc: BaseException) -> bool:
    if isinstance(exc, StaleConnection):
        return False
    # Throttling, our own queueing and client errors say nothing about the host's health; outages and
    # garbage do.
    return isinstance(exc, (ServerError, ProviderTimeoutError, ProviderConnectionError, MalformedResponseError))


def outcome_of(error: BaseException) -> str:
    """How an attempt that failed with `error` ended, for billing: "not_sent", "refused" (the host answered
    with an error status: not billed) or "unknown" (it may have generated, and billed, tokens)."""
    if isinstance(error, (AdmissionRefused, ProviderConnectionError, CallDeferred)):
        return "not_sent"
    if isinstance(error, (ProviderTimeoutError, MalformedResponseError, asyncio.CancelledError)):
        return "unknown"
    return "refused" if isinstance(error, ProviderError) else "unknown"


@dataclass(slots=True)
class CallReport:
    """What one call did on the wire: the time it queued for admission and each HTTP attempt."""

    queued_s: float = 0.0
    attempts: list[HttpAttempt] = field(default_factory=list)
    attempt_started: float = 0.0

    def begin(self) -> None:
        self.attempt_started = time.perf_counter()

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.attempt_started) * 1000

    def add(self, outcome: str, status: int | None = None, error: BaseException | None = None) -> None:
        self.attempts.append(HttpAttempt(outcome=outcome, status=status, latency_ms=round(self.elapsed_ms(), 3),
                                         error=type(error).__name__ if error is not None else None))

    def attach(self, exc: BaseException) -> None:
        """Put the report on an error the call raises, for the pipeline's record and charge."""
        if isinstance(exc, Exception):
            exc.http_attempts = tuple(self.attempts)  # type: ignore[attr-defined]
            exc.queued_ms = self.queued_s * 1000  # type: ignore[attr-defined]


class HttpCaller:
    """Sends one call for one (provider, model) through breaker, admission, retries and timeouts."""

    def __init__(self, *, provider: str, options: HttpOptions, map_error: ErrorMapper,
                 request_id_header: str = "x-request-id", auth: Callable[[], dict[str, str]] | None = None):
        self.provider = provider
        # Auth headers are built per request from the Secret, so no long-lived object holds the plain key.
        self._auth = auth
        self.options = options
        self._map_error = map_error
        self._request_id_header = request_id_header
        self._timeout = options.timeouts.client_timeout()
        self._breakers = options.breakers or DEFAULT_BREAKERS
        self._admission = options.admission or DEFAULT_ADMISSION
        self._retry_budget = (options.retry_budgets or DEFAULT_RETRY_BUDGETS).get(provider)

    async def post_json(self, url: str, body: Mapping[str, Any], headers: Mapping[str, str], *, model: str,
                        parse: Callable[[Any, Mapping[str, str]], T], timeout: float | None = None,
                        priority: int = 2, tokens: Callable[[], int] | None = None, report: CallReport | None = None) -> T:
        """POST `body` and return `parse(JSON, headers)`; a body that is not JSON or that `parse` rejects with
        MalformedResponseError counts as a failed attempt (retried, breaker-counted). `report` receives the
        time queued and every HTTP attempt."""
        report = report if report is not None else CallReport()

        async def once() -> T:
            response = await self._send(url, body, headers, model, report)
            try:
                raw = await self.read_capped(response, model)
            finally:
                response.release()  # back to the pool once read whole; closed when the read failed
            try:
                data = json.loads(raw)
            except ValueError:
                raise MalformedResponseError(f"the body is not JSON: {raw[:120]!r}", provider=self.provider,
                                             model=model, status_code=response.status,
                                             request_id=self.request_id(response.headers)) from None
            result = parse(data, response.headers)
            report.add("answered", response.status)
            return result

        async with self._admitted(model, timeout, priority, tokens, report) as deadline:
            return await self._attempts(once, model, deadline, report)

    @asynccontextmanager
    async def open_stream(self, url: str, body: Mapping[str, Any], headers: Mapping[str, str], *,
                          model: str, timeout: float | None = None, priority: int = 2, tokens: Callable[[], int] | None = None,
                          report: CallReport | None = None) -> AsyncIterator[aiohttp.ClientResponse]:
        """Open a streamed POST whose status is 2xx (retrying failures before the first byte); the response
        is closed, and its admission slot freed, on exit, including when the consuming task is cancelled."""
        report = report if report is not None else CallReport()
        async with self._admitted(model, timeout, priority, tokens, report) as deadline:
            response = await self._attempts(lambda: self._send(url, body, headers, model, report), model, deadline,
                                            report)
            try:
                yield response
            finally:
                response.release()  # a stream left before its end closes its connection

    def request_id(self, headers: Mapping[str, str]) -> str | None:
        return headers.get(self._request_id_header)

    async def read_capped(self, response: aiohttp.ClientResponse, model: str) -> bytes:
        """The body, read as it arrives; past `max_response_bytes` reading stops with MalformedResponseError."""
        cap = self.options.max_response_bytes
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_any():
            size += len(chunk)
            if size > cap:
                raise MalformedResponseError(f"the answer is larger than max_response_bytes={cap}; cut",
                                             provider=self.provider, model=model, status_code=response.status,
                                             request_id=self.request_id(response.headers))
            chunks.append(chunk)
        return b"".join(chunks)

    @asynccontextmanager
    async def _admitted(self, model: str, timeout: float | None, priority: int,
                        tokens: Callable[[], int] | None,
                        report: CallReport) -> AsyncIterator[float]:
        """Hold an admission slot for the body; yields the call's deadline (time.monotonic())."""
        deadline = time.monotonic() + (timeout or self.options.timeouts.total)
        gate = self._admission.gate(self.provider, model)
        try:
            report.queued_s = await gate.acquire(priority=priority, deadline=deadline, tokens=tokens,
                                                 what=f"{self.provider}/{model}")
        except BaseException as exc:
            report.attach(exc)
            raise
        try:
            yield deadline
        except BaseException as exc:
            report.attach(exc)
            raise
        finally:
            gate.release()

    async def _attempts(self, once: Callable[[], Awaitable[T]], model: str, deadline: float,
                        report: CallReport) -> T:
        """Run `once` through the breaker until it succeeds, a non-retryable error occurs or attempts, the
        retry budget or the time run out."""
        breaker = self._breakers.get(self.provider, model)
        breaker.before_call(self.provider, model)
        self._retry_budget.earn()
        try:
            result = await self._retry_loop(once, model, deadline, report)
        except BaseException as exc:
            if _counts_against_breaker(exc):
                breaker.record_failure()
            else:
                breaker.release_probe()
            raise
        breaker.record_success()
        return result

    async def _retry_loop(self, once: Callable[[], Awaitable[T]], model: str, deadline: float,
                          report: CallReport) -> T:
        policy = self.options.retry
        attempt = stale = 0
        while True:
            report.begin()
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    return await once()
            except aiohttp.ClientError as exc:  # before TimeoutError: aiohttp's read timeouts are both
                error: ProviderError = transport_error(exc, self.provider, model)
            except TimeoutError as exc:
                error = exc if isinstance(exc, ProviderError) else ProviderTimeoutError(
                    "the call's total timeout passed", provider=self.provider, model=model)
            except ProviderError as exc:
                error = exc
            except asyncio.CancelledError as exc:
                report.add("unknown", None, exc)
                raise
            report.add(outcome_of(error), error.status_code, error)
            if isinstance(error, StaleConnection) and stale < MAX_STALE_RESENDS:
                stale += 1
                continue
            wait = self._wait_before_retry(error, attempt, deadline)
            if wait is None:
                raise error from None
            log.info("retrying %s/%s in %.2fs after %s (attempt %d of %d)", self.provider, model, wait,
                     type(error).__name__, attempt + 1, policy.max_attempts)
            await self.options.sleep(wait)
            attempt += 1

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
        if not self._retry_budget.spend():
            log.warning("%s: retry budget spent; %s raised instead of retried", self.provider,
                        type(error).__name__)
            return None
        if outcome_of(error) == "unknown":
            before_resend = BEFORE_RESEND.get()
            if before_resend is not None:
                try:
                    before_resend()  # reserve the unknown attempt's worst case before sending again
                except (BudgetExceeded, BudgetBackendUnavailable) as exc:
                    log.info("%s: not retried, the next attempt could not be reserved (%s)", self.provider,
                             type(exc).__name__)
                    return None
        return wait

    async def _send(self, url: str, body: Mapping[str, Any], headers: Mapping[str, str], model: str,
                    report: CallReport) -> aiohttp.ClientResponse:
        if self._auth is not None:
            headers = {**headers, **self._auth()}
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
        response = await DEFAULT_POOL.session().post(url, data=content, headers=headers, timeout=self._timeout,
                                                   allow_redirects=False)
        self._admission.gate(self.provider, model).observe_headers(response.headers)
        if response.status < 400:
            return response
        try:
            raw = (await self.read_capped(response, model)).decode("utf-8", "replace")
        except MalformedResponseError:
            raw = ""  # an error body past the cap: the status alone decides the error
        finally:
            response.release()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        raise self._map_error(response.status, parsed, raw, response.headers, self.request_id(response.headers),
                              model)


def status_error(status: int, message: str, headers: Mapping[str, str], *, provider: str, model: str,
                 request_id: str | None) -> ProviderError:
    """The generic mapping of an error status; wire adapters handle their special cases first."""
    kw: dict[str, Any] = {"provider": provider, "model": model, "status_code": status, "request_id": request_id}
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
