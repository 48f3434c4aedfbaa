"""The whole exception tree of cascadeflow.

    CascadeflowError
    ├── ConfigurationError (ValueError)          raised at construction / before any request; never retried
    │   ├── UnknownProviderError                 lists the known providers
    │   ├── MissingAPIKeyError                   names the environment variable to set
    │   ├── InvalidRequestError                  malformed messages, negative max_tokens, ...
    │   ├── UnsafeBind                           a gateway without a key store asked to listen beyond loopback
    │   ├── UnknownModelPriceError (LookupError) the price book cannot price a model
    │   └── MissingExtraError (ImportError)      an optional dependency is not installed; names the extra
    ├── ProviderError                            a provider call failed (carries provider, model, status)
    │   ├── AuthenticationError                  401/403
    │   ├── RateLimitError                       429 (retry_after seconds when the server said)
    │   ├── ProviderTimeoutError (TimeoutError)  connect/read/total timeout
    │   ├── ProviderConnectionError (ConnectionError) the host could not be reached or dropped the connection
    │   ├── ServerError                          5xx
    │   ├── BadRequestError                      other 4xx
    │   │   └── ContextWindowExceededError       prompt + max_tokens do not fit the model
    │   ├── ContentFilteredError                 the provider refused on content grounds
    │   ├── MalformedResponseError               the body or stream could not be parsed
    │   │   └── UnreadableAnswer                 an instrumented SDK answered in a shape the harness cannot read
    │   ├── CircuitOpenError                     the breaker for (provider, model) is open
    │   └── AdmissionRefused                     queued past its deadline or rate limit; nothing was sent
    ├── BudgetExceeded                           a reservation did not fit (key, limit, requested, remaining);
    │   │                                        also importable as BudgetExceededError
    │   └── KeyRateLimited                       a gateway key's requests or tokens per minute are used up
    ├── KeyRejected                              the gateway refused a client key (missing, unknown, revoked,
    │                                            or not allowed the model asked for)
    ├── BudgetBackendUnavailable                 the ledger store cannot be reached (fail closed)
    ├── AuditUnavailable                         enforce mode: an audit sink is failing, nothing is sent
    ├── PolicyViolation                          compliance / tool policy stopped the call in enforce mode
    ├── CascadeExhausted                         every tier failed (attempts attached)
    ├── CallDeferred                             a low-severity call met a long admission queue: stored in
    │                                            the deferred queue (item id attached), nothing was sent
    └── ReplayDataError (ValueError)             a recorded-outcome file is malformed (line number attached)

Messages never contain API keys: adapters build errors from status codes and response bodies only.
"""

from __future__ import annotations

from typing import Any


class CascadeflowError(Exception):
    """Base class of every error cascadeflow raises."""


class ConfigurationError(CascadeflowError, ValueError):
    """Wrong configuration or input, detected before any request is sent."""


class UnknownProviderError(ConfigurationError):
    def __init__(self, provider: str, known: list[str]):
        self.provider = provider
        self.known = sorted(known)
        super().__init__(f"unknown provider {provider!r}; known providers: {', '.join(self.known)}")


class MissingAPIKeyError(ConfigurationError):
    def __init__(self, provider: str, env_var: str):
        self.provider = provider
        self.env_var = env_var
        super().__init__(
            f"no API key for provider {provider!r}: set the {env_var} environment variable "
            f"or pass api_key= to ModelConfig"
        )


class InvalidRequestError(ConfigurationError):
    """A request that can never succeed: malformed messages, bad parameters."""


class UnsafeBind(ConfigurationError):
    """The gateway was asked to listen on a non-loopback address without a key store: anyone who can reach it
    could spend through it. Configure `keys = "sqlite:///keys.db"` (or Redis/PostgreSQL) or bind 127.0.0.1."""

    def __init__(self, host: str):
        self.host = host
        super().__init__(f"refusing to listen on {host!r} without a key store: any client could spend through "
                         f"the gateway; configure keys = 'sqlite:///keys.db' (or a Redis/PostgreSQL URL) and create "
                         f"keys with `cascadeflow keys create`, or bind 127.0.0.1")


class UnknownModelPriceError(ConfigurationError, LookupError):
    def __init__(self, provider: str | None, model: str, *, hint: str = ""):
        self.provider = provider
        self.model = model
        where = f"{provider}/{model}" if provider else model
        super().__init__(
            f"no price known for model {where!r}; declare one with ModelConfig(cost=... per 1K tokens, "
            f"input_price_per_million=..., output_price_per_million=...) or configure an unknown-model "
            f"price ceiling{(': ' + hint) if hint else ''}"
        )


class MissingExtraError(ConfigurationError, ImportError):
    """A feature needs an optional dependency that is not installed: names the extra that installs it."""

    def __init__(self, feature: str, extra: str):
        self.feature = feature
        self.extra = extra
        super().__init__(f'{feature} needs the "{extra}" extra: pip install "cascadeflow[{extra}]"')


class ProviderError(CascadeflowError):
    """A provider call failed. `retryable` tells the retry loop whether another attempt may help."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        status_code: int | None = None,
        request_id: str | None = None,
    ):
        self.provider = provider
        self.model = model
        self.status_code = status_code
        self.request_id = request_id
        prefix = f"[{provider}/{model}] " if provider else ""
        status = f" (HTTP {status_code})" if status_code else ""
        super().__init__(f"{prefix}{message}{status}")


class AuthenticationError(ProviderError):
    pass


class RateLimitError(ProviderError):
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any):
        self.retry_after = retry_after
        super().__init__(message, **kw)


class ProviderTimeoutError(ProviderError, TimeoutError):
    retryable = True


class ProviderConnectionError(ProviderError, ConnectionError):
    retryable = True


class ServerError(ProviderError):
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any):
        self.retry_after = retry_after
        super().__init__(message, **kw)


class BadRequestError(ProviderError):
    pass


class ContextWindowExceededError(BadRequestError):
    pass


class ContentFilteredError(ProviderError):
    pass


class MalformedResponseError(ProviderError):
    retryable = True


class UnreadableAnswer(MalformedResponseError):
    """An instrumented SDK call answered, but the harness could not read the answer (a result or event shape it
    does not know, say from a newer SDK). Never raised to the caller, who gets the SDK's result unchanged: the
    attempt is recorded with this error and charged its worst case, like any answer whose usage is unknown."""

    retryable = False


class CircuitOpenError(ProviderError):
    def __init__(self, message: str, *, reopens_in: float, **kw: Any):
        self.reopens_in = reopens_in
        super().__init__(message, **kw)


class AdmissionRefused(ProviderError):
    """The call waited for admission (in-flight limit, rate limit) and its deadline would pass before it could
    be sent: refused without sending, so nothing is charged and the circuit breaker is not told."""


class CallDeferred(CascadeflowError):
    """A low-severity call arrived while its provider's admission queue was long, and a deferred queue is
    configured (`DeferPolicy`): instead of waiting, the call was stored in that queue (`item_id`) to be run
    later by draining it. Nothing was sent, so nothing is charged."""

    def __init__(self, message: str, *, priority: int, queued: int, queue: Any = None):
        self.priority = priority
        self.queued = queued
        self.queue = queue  # the DeferredQueue the pipeline stores the call in
        self.item_id: str | None = None  # set once the call is stored
        super().__init__(message)

    def __str__(self) -> str:
        stored = f"; stored as deferred item {self.item_id}" if self.item_id else ""
        return f"{super().__str__()}{stored}"


class BudgetExceeded(CascadeflowError):
    """A call's worst-case cost does not fit a budget. Raised before the call is sent."""

    def __init__(
        self,
        message: str = "budget exceeded",
        *,
        key: str | None = None,
        limit_usd: float | None = None,
        requested_usd: float | None = None,
        remaining_usd: float | None = None,
    ):
        self.key = key
        self.limit_usd = limit_usd
        self.requested_usd = requested_usd
        self.remaining_usd = remaining_usd
        detail = []
        if key is not None:
            detail.append(f"budget={key}")
        if limit_usd is not None:
            detail.append(f"limit=${limit_usd:.6f}")
        if requested_usd is not None:
            detail.append(f"requested=${requested_usd:.6f}")
        if remaining_usd is not None:
            detail.append(f"remaining=${remaining_usd:.6f}")
        super().__init__(message + (f" ({', '.join(detail)})" if detail else ""))


class KeyRateLimited(BudgetExceeded):
    """A gateway key's requests-per-minute or tokens-per-minute limit is used up; `retry_after` seconds until
    the next minute starts."""

    def __init__(self, message: str, *, retry_after: float, **kw: Any):
        self.retry_after = retry_after
        super().__init__(message, **kw)


class KeyRejected(CascadeflowError):
    """The gateway refused a client key: `status` 401 (missing, unknown or revoked) or 403 (the key may not use
    the model it asked for). Raised before anything is reserved or sent."""

    def __init__(self, message: str, *, status: int = 401):
        self.status = status
        super().__init__(message)


BudgetExceededError = BudgetExceeded  # the same class under the name code written for other libraries uses


class BudgetBackendUnavailable(CascadeflowError):
    """The ledger store cannot be reached; calls are refused (fail closed) unless fail-open is configured."""


class AuditUnavailable(CascadeflowError):
    """Enforce mode refused to send a call because an audit sink is failing (a full disk, a lost server):
    a call that could not be recorded is not made. Records are spooled meanwhile (see docs/reliability.md)."""


class PolicyViolation(CascadeflowError):
    def __init__(self, message: str, *, policy: str | None = None, action: str = "stop"):
        self.policy = policy
        self.action = action
        super().__init__(message)


class CascadeExhausted(CascadeflowError):
    """Every tier of a cascade failed; `attempts` holds each tier's record and error."""

    def __init__(self, message: str, attempts: list[Any]):
        self.attempts = attempts
        super().__init__(message)


class ReplayDataError(CascadeflowError, ValueError):
    def __init__(self, message: str, *, path: str | None = None, line: int | None = None):
        self.path = path
        self.line = line
        where = f"{path}:{line}: " if path and line else (f"line {line}: " if line else "")
        super().__init__(f"{where}{message}")
