"""Who may write: the API token for the write endpoints (a bearer header, or a signed-in browser's cookie)
and the shared secret for alert webhooks, each compared in constant time. Neither secret is ever put in a
page, an event or a log line; the browser's cookie holds a value derived from the token, not the token."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlsplit

from fastapi import HTTPException, Request, status
from pydantic import SecretStr

SESSION_COOKIE = "cf_incidents_session"


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def session_value(token: SecretStr) -> str:
    """What a signed-in browser's cookie holds: a keyed hash of the token (the token itself stays out)."""
    return hmac.new(token.get_secret_value().encode(), b"cascadeflow-incidents-session", hashlib.sha256).hexdigest()


def session_matches(cookie: str | None, token: SecretStr | None) -> bool:
    return token is not None and bool(cookie) and _same(str(cookie), session_value(token))


def token_matches(given: str, token: SecretStr | None) -> bool:
    return token is not None and bool(given) and _same(given, token.get_secret_value())


def _bearer(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None


def _basic_password(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2] or None


def _same_origin(request: Request) -> bool:
    """A cookie-authenticated write must come from this app's own pages (the cookie is SameSite=Strict too)."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin:
        return True  # same-origin form posts from older browsers send neither; SameSite still applies
    return urlsplit(origin).netloc == request.headers.get("host", "")


def check_write(request: Request, token: SecretStr | None) -> None:
    """Raise 401/403 unless the request carries the API token (bearer) or a signed-in session cookie."""
    if token is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "write endpoints are disabled: no API token is configured "
                            "(set CASCADEFLOW_INCIDENTS_API_TOKEN)")
    bearer = _bearer(request)
    if bearer is not None:
        if token_matches(bearer, token):
            return
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong API token",
                            headers={"WWW-Authenticate": "Bearer"})
    if session_matches(request.cookies.get(SESSION_COOKIE), token):
        if not _same_origin(request):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "cross-origin write refused")
        return
    raise HTTPException(status.HTTP_401_UNAUTHORIZED, "this endpoint needs the API token: send "
                        "'Authorization: Bearer <token>' or sign in on the page",
                        headers={"WWW-Authenticate": "Bearer"})


def check_webhook(request: Request, secret: SecretStr | None) -> None:
    """Alert intake: the shared secret as a bearer credential (Alertmanager's `authorization`) or a
    basic-auth password (Grafana's webhook contact point)."""
    if secret is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "alert intake is disabled: no webhook secret or API token "
                            "is configured (set CASCADEFLOW_INCIDENTS_WEBHOOK_SECRET)")
    given = _bearer(request) or _basic_password(request)
    if given is None or not token_matches(given, secret):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong webhook secret",
                            headers={"WWW-Authenticate": "Bearer"})
