"""Redis ledger: each operation is one Lua script, so check-and-reserve runs atomically on the server.

Layout under a prefix (default `{cascadeflow}:`; the braces are a cluster hash tag so every key of one
ledger lives in one slot): `k:<key>` hash {spent, reserved}; `r:<id>` hash {keys, amount, status, actual};
`leases` sorted set of held reservation ids scored by expiry (server time). Settled and expired reservation
hashes are kept for `retention_seconds` (duplicate settles stay recognisable), then Redis drops them; every
key carries a TTL (see `RedisLedger`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from cascadeflow.budget.ledger import (
    RETENTION_SECONDS,
    BaseLedger,
    BudgetState,
    Charge,
    Clock,
    Reservation,
    Settlement,
    exceeded,
)
from cascadeflow.budget.windows import key_window_end
from cascadeflow.errors import BudgetBackendUnavailable, ConfigurationError
from cascadeflow.trace.redact import redact_text, redact_url

CONNECT_TIMEOUT = 0.5  # seconds; a dead store must not hold a call for long (the ledger then backs off)
SOCKET_TIMEOUT = 2.0

# Shared by every script. `clock` is the caller's time, or '' for the server's own (TIME), so workers whose
# clocks disagree judge leases alike. `expire` charges held reservations whose lease passed their worst
# case (at most 100 per call): their holder stopped answering, so whether the call was billed is unknown.
_EXPIRE = """
local function clock(given)
  if given ~= '' then return tonumber(given) end
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function expire(p, now, retention)
  local gone = redis.call('ZRANGEBYSCORE', p .. 'leases', '-inf', now, 'LIMIT', 0, 100)
  for _, rid in ipairs(gone) do
    local r = p .. 'r:' .. rid
    local amount = tonumber(redis.call('HGET', r, 'amount'))
    if amount and amount > 0 then  -- HINCRBY rejects '-0'
      for key in string.gmatch(redis.call('HGET', r, 'keys'), '[^\\n]+') do
        redis.call('HINCRBY', p .. 'k:' .. key, 'reserved', -amount)
        redis.call('HINCRBY', p .. 'k:' .. key, 'spent', amount)
      end
    end
    if amount then
      redis.call('HSET', r, 'status', 'expired')
      redis.call('EXPIRE', r, retention)
    end
    redis.call('ZREM', p .. 'leases', rid)
  end
  return #gone
end
-- a key lives until its window (plus grace) has passed and `retention` after its last lease, whichever is later
-- (TTLs are relative, so they hold on the server's clock whichever clock `now` was read from)
local function keep_until(h, at, now)
  local ttl, wanted = redis.call('TTL', h), math.max(1, math.ceil(at - now))
  if ttl < wanted then redis.call('EXPIRE', h, wanted) end
end
"""

# ARGV: prefix, id, amount, lease seconds, now ('' = TIME), retention, n, then n triples (key, limit, window
# end or 0). Returns {'held'|'existing', amount, released} or {'exceeded', index, spent, reserved, released}.
RESERVE = _EXPIRE + """
local p, rid, amount = ARGV[1], ARGV[2], tonumber(ARGV[3])
local now, retention = clock(ARGV[5]), tonumber(ARGV[6])
local released = expire(p, now, retention)
local r = p .. 'r:' .. rid
local existing = redis.call('HGET', r, 'amount')
if existing then return {'existing', tonumber(existing), released} end
local n = tonumber(ARGV[7])
for i = 1, n do
  local h = p .. 'k:' .. ARGV[5 + 3 * i]
  local spent = tonumber(redis.call('HGET', h, 'spent') or '0')
  local reserved = tonumber(redis.call('HGET', h, 'reserved') or '0')
  if spent + reserved + amount > tonumber(ARGV[6 + 3 * i]) then
    return {'exceeded', i, spent, reserved, released}
  end
end
local expires = now + tonumber(ARGV[4])
local keys = {}
for i = 1, n do
  local h = p .. 'k:' .. ARGV[5 + 3 * i]
  redis.call('HINCRBY', h, 'reserved', ARGV[3])
  keep_until(h, math.max(expires + retention, tonumber(ARGV[7 + 3 * i])), now)
  keys[i] = ARGV[5 + 3 * i]
end
redis.call('HSET', r, 'keys', table.concat(keys, '\\n'), 'amount', ARGV[3], 'status', 'held')
redis.call('EXPIRE', r, math.max(1, math.ceil(expires + retention - now)))
redis.call('ZADD', p .. 'leases', expires, rid)
keep_until(p .. 'leases', expires + retention, now)
return {'held', amount, released}
"""

# ARGV: prefix, id, actual, now ('' = TIME), retention. Returns {settle status, released}.
SETTLE = _EXPIRE + """
local p, rid = ARGV[1], ARGV[2]
local released = expire(p, clock(ARGV[4]), ARGV[5])
local r = p .. 'r:' .. rid
local status = redis.call('HGET', r, 'status')
if not status then return {'unknown', released} end
if status == 'settled' then return {'duplicate', released} end
local amount = tonumber(redis.call('HGET', r, 'amount'))
for key in string.gmatch(redis.call('HGET', r, 'keys'), '[^\\n]+') do
  if status == 'held' then
    if amount > 0 then redis.call('HINCRBY', p .. 'k:' .. key, 'reserved', -amount) end
    redis.call('HINCRBY', p .. 'k:' .. key, 'spent', ARGV[3])
  else  -- expired: charged its worst case then; the real cost replaces it
    redis.call('HINCRBY', p .. 'k:' .. key, 'spent', tonumber(ARGV[3]) - amount)
  end
end
redis.call('HSET', r, 'status', 'settled', 'actual', ARGV[3])
redis.call('EXPIRE', r, ARGV[5])
redis.call('ZREM', p .. 'leases', rid)
if status == 'held' then return {'settled', released} end
return {'late', released}
"""

# ARGV: prefix, now ('' = TIME), retention, keys... Returns {released, spent1, reserved1, spent2, ...}.
STATES = _EXPIRE + """
local p = ARGV[1]
local out = {expire(p, clock(ARGV[2]), ARGV[3])}
for i = 4, #ARGV do
  local v = redis.call('HMGET', p .. 'k:' .. ARGV[i], 'spent', 'reserved')
  out[#out + 1] = tonumber(v[1] or '0')
  out[#out + 1] = tonumber(v[2] or '0')
end
return out
"""


class RedisLedger(BaseLedger):
    """Ledger on a Redis server (5.0+), shared by every process and machine that can reach it. Leases are
    judged by the server's clock (TIME), so a machine whose clock is off cannot expire others' reservations.
    Every key carries a TTL: budget keys until their window (plus grace) and `retention_seconds` after their
    last lease have passed, reservations `retention_seconds` after their lease."""

    has_store_clock = True

    def __init__(self, client: Any, *, prefix: str = "{cascadeflow}:", url: str = "redis://",
                 fail_open: bool = False, clock: Clock | None = None,
                 retention_seconds: int = RETENTION_SECONDS):
        super().__init__(fail_open=fail_open, clock=clock, retention_seconds=retention_seconds)
        self.client = client
        self.prefix = prefix
        self.url = url
        self._reserve_script = client.register_script(RESERVE)
        self._settle_script = client.register_script(SETTLE)
        self._states_script = client.register_script(STATES)

    @classmethod
    def from_url(cls, url: str, **kw: Any) -> RedisLedger:
        try:
            import redis
        except ImportError as exc:
            raise ConfigurationError('the Redis ledger needs the redis client: pip install "cascadeflow[redis]"') \
                from exc
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        prefix = query.pop("prefix", ["cascadeflow"])[0]
        if "{" not in prefix:  # a cluster hash tag keeps every key of one ledger in one slot (Lua needs it)
            prefix = "{" + prefix + "}"
        prefix += ":"
        rest = "&".join(f"{k}={v[0]}" for k, v in query.items())
        clean = urlunsplit((parts.scheme, parts.netloc, parts.path, rest, ""))
        client = redis.Redis.from_url(clean, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=SOCKET_TIMEOUT)
        safe = redact_url(url)
        return cls(client, prefix=prefix, url=safe, **kw)

    def close(self) -> None:
        self.client.close()

    def _run(self, script: Any, args: list[Any]) -> Any:
        import redis

        try:
            return script(keys=[], args=args)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise BudgetBackendUnavailable(redact_text(f"Redis ledger {self.url} unreachable: {exc}")) from exc

    def _reserve(self, reservation_id: str, charges: Sequence[Charge], amount_micro: int,
                 lease_seconds: float, now: float | None) -> Reservation:
        args: list[Any] = [self.prefix, reservation_id, amount_micro, repr(lease_seconds), _clock_arg(now),
                           int(self.retention_seconds), len(charges)]
        for charge in charges:
            args += [charge.key, charge.limit_micro, repr(key_window_end(charge.key) or 0)]
        reply = self._run(self._reserve_script, args)
        self.counters["expired_charged"] += int(reply[-1])
        status = _text(reply[0])
        if status == "exceeded":
            charge = charges[int(reply[1]) - 1]
            raise exceeded(charge, BudgetState(key=charge.key, spent=int(reply[2]),
                                               reserved=int(reply[3])), amount_micro)
        return Reservation(reservation_id=reservation_id, amount_micro=int(reply[1]),
                           status=status)  # type: ignore[arg-type]

    def _settle(self, reservation_id: str, actual_micro: int, now: float | None) -> Settlement:
        reply = self._run(self._settle_script, [self.prefix, reservation_id, actual_micro, _clock_arg(now),
                                                int(self.retention_seconds)])
        self.counters["expired_charged"] += int(reply[1])
        return Settlement(reservation_id=reservation_id, status=_text(reply[0]),  # type: ignore[arg-type]
                          actual_micro=actual_micro)

    def _states(self, keys: Sequence[str], now: float | None) -> list[BudgetState]:
        reply = self._run(self._states_script, [self.prefix, _clock_arg(now), int(self.retention_seconds), *keys])
        self.counters["expired_charged"] += int(reply[0])
        return [BudgetState(key=k, spent=int(reply[1 + 2 * i]), reserved=int(reply[2 + 2 * i]))
                for i, k in enumerate(keys)]

    def _sweep(self, now: float | None) -> int:
        total = 0
        while True:  # the script charges at most 100 expired reservations per run
            released = int(self._run(self._states_script,
                                     [self.prefix, _clock_arg(now), int(self.retention_seconds)])[0])
            self.counters["expired_charged"] += released
            total += released
            if released < 100:
                return total

    def drop_all(self) -> None:
        """Delete every key under this ledger's prefix (tests and benchmarks)."""
        for key in self.client.scan_iter(match=_glob_escape(self.prefix) + "*", count=1000):
            self.client.delete(key)


def _clock_arg(now: float | None) -> str:
    return "" if now is None else repr(now)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)
