"""What a failed call looks like to a client: cascadeflow's typed errors mapped to an HTTP status (with
`Retry-After` where waiting helps) and rendered in each wire format's own error shape."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Literal

from cascadeflow.errors import (
    AdmissionRefused,
    AuditUnavailable,
    AuthenticationError,
    BadRequestError,
    BudgetBackendUnavailable,
    BudgetExceeded,
    CascadeExhausted,
    CircuitOpenError,
    ConfigurationError,
    ContentFilteredError,
    KeyRateLimited,
    KeyRejected,
    PolicyViolation,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
)
from cascadeflow.trace.redact import safe_error_text

Wire = Literal["openai", "anthropic"]

OPENAI_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "insufficient_quota",
                403: "permission_error", 404: "not_found_error", 429: "rate_limit_error", 500: "server_error",
                502: "server_error", 503: "server_error", 504: "timeout_error"}
ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
                   403: "permission_error", 404: "not_found_error", 429: "rate_limit_error", 500: "api_error",
                   502: "api_error", 503: "overloaded_error", 504: "timeout_error"}


@dataclass(frozen=True, slots=True)
class Failure:
    """An error as the client sees it."""

    status: int
    message: str
    code: str | None = None
    retry_after: float | None = None

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"retry-after": str(max(1, math.ceil(self.retry_after)))}

    def body(self, wire: Wire) -> dict[str, Any]:
        if wire == "anthropic":
            return {"type": "error", "error": {"type": ANTHROPIC_TYPES.get(self.status, "api_error"),
                                               "message": self.message}}
        return {"error": {"message": self.message, "type": OPENAI_TYPES.get(self.status, "server_error"),
                          "param": None, "code": self.code}}


def _budget_retry(exc: BudgetExceeded) -> float | None:
    """Seconds until the refusing budget's window ends (a daily or monthly key); None for a per-call cap."""
    from cascadeflow.budget.windows import key_window_end

    end = key_window_end(exc.key) if exc.key else None
    return max(end - time.time(), 1.0) if end is not None else None


def failure(exc: BaseException) -> Failure:
    """The status, message and wait of `exc` (messages never carry keys: providers' errors are scrubbed)."""
    text = safe_error_text(str(exc))
    if isinstance(exc, KeyRejected):
        return Failure(exc.status, text, "invalid_api_key" if exc.status == 401 else "model_not_allowed")
    if isinstance(exc, KeyRateLimited):
        return Failure(429, text, "rate_limit_exceeded", exc.retry_after)
    if isinstance(exc, BudgetExceeded):
        return Failure(402, text, "budget_exceeded", _budget_retry(exc))
    if isinstance(exc, ConfigurationError):  # the request itself: malformed, unknown model, unpriceable
        return Failure(400, text, "invalid_request")
    if isinstance(exc, PolicyViolation):
        return Failure(403, text, "policy_violation")
    if isinstance(exc, (AuditUnavailable, BudgetBackendUnavailable)):
        return Failure(503, text, "unavailable", 5.0)
    if isinstance(exc, ProviderError):
        return _provider_failure(exc, text)
    if isinstance(exc, CascadeExhausted):
        return Failure(502, text, "upstream_error")
    return Failure(500, f"internal error ({type(exc).__name__})", "internal_error")


def _provider_failure(exc: ProviderError, text: str) -> Failure:
    if isinstance(exc, RateLimitError):
        return Failure(429, text, "upstream_rate_limited", exc.retry_after or 1.0)
    if isinstance(exc, CircuitOpenError):
        return Failure(503, text, "upstream_unavailable", exc.reopens_in)
    if isinstance(exc, AdmissionRefused):
        return Failure(503, text, "upstream_busy", 1.0)
    if isinstance(exc, ProviderTimeoutError):
        return Failure(504, text, "upstream_timeout")
    if isinstance(exc, AuthenticationError):  # the gateway's own provider key: not the client's fault
        return Failure(502, text, "upstream_auth")
    if isinstance(exc, (BadRequestError, ContentFilteredError)):
        return Failure(400, text, "upstream_bad_request")
    if isinstance(exc, ServerError):
        return Failure(502, text, "upstream_error", exc.retry_after)
    return Failure(502, text, "upstream_error")
