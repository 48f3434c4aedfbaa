"""Virtual keys: what a client key may do (models, budgets, rate limits) and who it speaks for (metadata).

A key reads `cfk_<id>_<secret>`. Only an HMAC-SHA256 of the whole key under the gateway's secret is stored,
and compared in constant time; the id finds the row. Budgets (per request, per day, per month) and rate
limits (requests and tokens per minute) are charges on the same ledger every other budget uses, so every
gateway process sharing one Redis or PostgreSQL ledger enforces them together with 0 overshoot.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from cascadeflow.budget.windows import window_key
from cascadeflow.errors import (
    BudgetBackendUnavailable,
    BudgetExceeded,
    ConfigurationError,
    KeyRateLimited,
    KeyRejected,
)
from cascadeflow.pricing import usd_to_micro_limit
from cascadeflow.runtime.call import Charge

log = logging.getLogger(__name__)

PREFIX = "cfk_"
# How long a call's token count is held at its bound before the ledger settles it at that bound by itself
# (a call outliving it is counted at its bound, never at zero).
TOKEN_HOLD_SECONDS = 600.0
# How long a finished per-minute count is kept: one count per request, so the ledger's own retention (days)
# would keep millions of them; a duplicate settle past this is not recognised, which a count can live with.
RATE_COUNT_RETENTION_SECONDS = 120.0
METADATA_FIELDS = ("team", "user", "feature")


@dataclass(frozen=True, slots=True)
class VirtualKey:
    """One client key as stored (never its secret; `digest` is the keyed hash of the whole key)."""

    id: str
    name: str
    digest: str = field(repr=False)
    models: tuple[str, ...] = ()  # allowed model names; empty: every served model
    per_request_usd: float | None = None
    per_day_usd: float | None = None
    per_month_usd: float | None = None
    rpm: int | None = None  # requests per minute
    tpm: int | None = None  # tokens per minute (prompt bound + max_tokens at admission, then the tokens used)
    metadata: Mapping[str, str] = field(default_factory=dict)  # team, user, feature: flow into every record
    created: float = 0.0
    revoked: bool = False

    def to_row(self) -> dict[str, Any]:
        row = asdict(self)
        row["models"] = list(self.models)
        row["metadata"] = dict(self.metadata)
        return row

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> VirtualKey:
        return cls(**{**row, "models": tuple(row.get("models") or ()), "metadata": dict(row.get("metadata") or {}),
                      "revoked": bool(row.get("revoked"))})

    def public(self) -> dict[str, Any]:
        """The key as `keys list` shows it (no digest)."""
        row = self.to_row()
        row.pop("digest")
        return row


class KeyStore(Protocol):
    """Where keys live (SQLite, Redis or PostgreSQL: see `cascadeflow.gateway.keystores`)."""

    def put(self, key: VirtualKey) -> None: ...

    def get(self, key_id: str) -> VirtualKey | None: ...

    def all(self) -> list[VirtualKey]: ...

    def ping(self) -> None: ...


@dataclass(frozen=True, slots=True)
class TokenHold:
    """A call's tokens-per-minute count, held at admission at its bound until the call ends and settles it."""

    reservation: str
    bound: int


def digest(secret: str, token: str) -> str:
    return hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()


def _new_token(key_id: str) -> str:
    return f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def _positive(name: str, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
        raise ConfigurationError(f"{name} must be a positive number, got {value!r}")


class KeyAdmin:
    """Create, list, rotate and revoke keys (the `cascadeflow keys` commands). Needs the hashing secret."""

    def __init__(self, store: KeyStore, secret: str):
        if not secret:
            raise ConfigurationError("virtual keys need a hashing secret: set CASCADEFLOW_GATEWAY_SECRET (or "
                                     "key_secret in the gateway configuration), the same for every gateway process")
        self.store = store
        self.secret = secret

    def create(self, name: str, *, models: tuple[str, ...] = (), per_request_usd: float | None = None,
               per_day_usd: float | None = None, per_month_usd: float | None = None, rpm: int | None = None,
               tpm: int | None = None, metadata: Mapping[str, str] | None = None) -> tuple[VirtualKey, str]:
        """A new key: (the stored record, the key itself, shown once)."""
        for label, value in (("per_request_usd", per_request_usd), ("per_day_usd", per_day_usd),
                             ("per_month_usd", per_month_usd), ("rpm", rpm), ("tpm", tpm)):
            _positive(label, value)
        unknown = sorted(set(metadata or {}) - set(METADATA_FIELDS))
        if unknown:
            raise ConfigurationError(f"unknown key metadata {', '.join(unknown)}; use {', '.join(METADATA_FIELDS)}")
        key_id = uuid.uuid4().hex[:12]
        token = _new_token(key_id)
        record = VirtualKey(id=key_id, name=name, digest=digest(self.secret, token), models=tuple(models),
                            per_request_usd=per_request_usd, per_day_usd=per_day_usd, per_month_usd=per_month_usd,
                            rpm=rpm, tpm=tpm, metadata=dict(metadata or {}), created=time.time())
        self.store.put(record)
        return record, token

    def _existing(self, key_id: str) -> VirtualKey:
        found = self.store.get(key_id)
        if found is None:
            raise ConfigurationError(f"no key with id {key_id!r} (see `cascadeflow keys list`)")
        return found

    def rotate(self, key_id: str) -> tuple[VirtualKey, str]:
        """A new secret for the same key (its budgets and spend carry over); the old one stops working."""
        token = _new_token(key_id)
        record = replace(self._existing(key_id), digest=digest(self.secret, token), revoked=False)
        self.store.put(record)
        return record, token

    def revoke(self, key_id: str) -> VirtualKey:
        record = replace(self._existing(key_id), revoked=True)
        self.store.put(record)
        return record

    def list(self) -> list[VirtualKey]:
        return sorted(self.store.all(), key=lambda k: k.created)


def key_id_of(token: str) -> str | None:
    if not token.startswith(PREFIX):
        return None
    key_id, sep, _ = token[len(PREFIX):].partition("_")
    return key_id if sep and key_id else None


class KeyGate:
    """The gateway's side of keys: authenticate a client key (looked-up keys are reused for `cache_seconds`,
    so a revocation reaches every process within that time), check its model, admit it under its rate
    limits and give the budget charges of its calls."""

    def __init__(self, store: KeyStore, secret: str, ledger: Any, *, cache_seconds: float = 5.0):
        KeyAdmin(store, secret)  # the same check of the secret
        self.store = store
        self.secret = secret
        self.ledger = ledger
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, VirtualKey | None]] = {}

    def authenticate(self, token: str | None) -> VirtualKey:
        if not token:
            raise KeyRejected("missing API key: send it as 'Authorization: Bearer cfk_...' or 'x-api-key'")
        key_id = key_id_of(token)
        record = self._lookup(key_id) if key_id else None
        if record is None or not hmac.compare_digest(record.digest, digest(self.secret, token)):
            raise KeyRejected("invalid API key")
        if record.revoked:
            raise KeyRejected("this API key has been revoked")
        return record

    def _lookup(self, key_id: str) -> VirtualKey | None:
        now = time.monotonic()
        cached = self._cache.get(key_id)
        if cached is not None and now - cached[0] < self.cache_seconds:
            return cached[1]
        record = self.store.get(key_id)
        self._cache[key_id] = (now, record)
        return record

    @staticmethod
    def check_model(key: VirtualKey, model: str) -> None:
        if key.models and model not in key.models:
            raise KeyRejected(f"this key may not use model {model!r}; allowed: {', '.join(key.models)}", status=403)

    def charges(self, key: VirtualKey, now: float | None = None) -> list[Charge]:
        """The per-day and per-month budgets of a key, as ledger charges for the window containing `now`."""
        now = time.time() if now is None else now
        out = []
        for period, usd in (("day", key.per_day_usd), ("month", key.per_month_usd)):
            if usd is not None:
                out.append(Charge(window_key(f"vkey:{key.id}", period, now),  # type: ignore[arg-type]
                                  usd_to_micro_limit(usd, f"per_{period}_usd")))
        return out

    def admit(self, key: VirtualKey, tokens: int, now: float | None = None) -> TokenHold | None:
        """Count one request (and `tokens`) against the key's per-minute limits on the ledger, or raise
        KeyRateLimited with the seconds until the next minute. Nothing is sent before this passes. The
        request counts at once; the tokens are held at `tokens` (the bound) and returned as a TokenHold
        that `settle_tokens` corrects to the tokens the call used."""
        if key.rpm is None and key.tpm is None:
            return None
        now = time.time() if now is None else now
        minute = int(now // 60)
        retry_after = (minute + 1) * 60 - now
        hold: TokenHold | None = None
        for kind, limit, amount in (("rpm", key.rpm, 1), ("tpm", key.tpm, tokens)):
            if limit is None:
                continue
            # the day window in the key lets every ledger backend drop the minute's counter once it is over
            charge = Charge(window_key(f"vkey:{key.id}:{kind}:{minute}", "day", now), limit)
            reservation = f"{kind}:{uuid.uuid4().hex}"
            try:
                self.ledger.reserve(reservation, [charge], amount, TOKEN_HOLD_SECONDS)
            except BudgetExceeded:
                if hold is not None:
                    self.ledger.release(hold.reservation)
                unit = "requests" if kind == "rpm" else "tokens"
                raise KeyRateLimited(f"rate limit: {limit} {unit} per minute for this key", key=charge.key,
                                     retry_after=retry_after) from None
            if kind == "rpm":
                self.ledger.settle(reservation, amount)
            else:
                hold = TokenHold(reservation, amount)
        return hold

    def settle_tokens(self, hold: TokenHold | None, used: int | None) -> None:
        """Correct a call's held token count to `used`, the tokens its attempts consumed (None when unknown,
        e.g. a call that failed or a stream cut short: the bound stays counted)."""
        if hold is None:
            return
        try:
            self.ledger.settle(hold.reservation, hold.bound if used is None else used)
        except BudgetBackendUnavailable:  # the answer is already the client's; the lease settles the bound
            log.warning("could not settle a tokens-per-minute count; its lease keeps the bound", exc_info=True)


def rate_ledger_url(url: str) -> str:
    """The ledger URL of the per-minute counts: the same store as `url` under a namespace of its own, so their
    short retention (`RATE_COUNT_RETENTION_SECONDS`) applies to them alone and never to the budgets' records.
    Every gateway process derives the same URL, so a fleet shares the counts as it shares the budgets."""
    from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    if scheme == "memory":
        return url  # a ledger of its own in this process
    if scheme == "sqlite":  # a file beside the ledger's (string surgery: urlunsplit drops the empty host)
        base, mark, rest = url.partition("?")
        stem, dot, suffix = base.rpartition(".")
        path = f"{stem}-rate.{suffix}" if dot and "/" not in suffix else f"{base}-rate"
        return path + mark + rest
    if scheme in ("redis", "rediss"):
        query["prefix"] = query.get("prefix", "cascadeflow") + "-rate"
    elif scheme in ("postgres", "postgresql"):
        query["table_prefix"] = query.get("table_prefix", "cascadeflow_budget_") + "rate_"
    else:
        raise ConfigurationError(f"no per-minute counts on a ledger of scheme {scheme!r}")
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))
