"""Calendar windows in budget keys: `user:alice:day:2026-11-24`, `global:month:2026-11`, in a time zone.

The window is part of the key, so a new day starts a new key and no reset job is needed. Dates are
calendar dates in the configured zone (UTC by default), read from an injectable clock.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cascadeflow.errors import ConfigurationError

Period = Literal["day", "month"]
PERIODS: tuple[Period, ...] = ("day", "month")


def resolve_timezone(name: str | tzinfo | None) -> tzinfo:
    """A tzinfo from an IANA name ("America/New_York"), a tzinfo, or None (UTC)."""
    if name is None:
        return UTC
    if isinstance(name, tzinfo):
        return name
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError(f"timezone must be an IANA zone name such as 'UTC' or 'Europe/Berlin', got {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(f"unknown timezone {name!r}; use an IANA zone name such as 'UTC', "
                                 f"'America/New_York' or 'Europe/Berlin'") from None


def local_time(now: float | datetime, tz: str | tzinfo | None = None) -> datetime:
    """`now` (epoch seconds, or an aware datetime) as a datetime in `tz`."""
    zone = resolve_timezone(tz)
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ConfigurationError("a naive datetime is ambiguous for budget windows; pass an aware one")
        return now.astimezone(zone)
    return datetime.fromtimestamp(float(now), tz=zone)


def window_label(period: Period, now: float | datetime, tz: str | tzinfo | None = None) -> str:
    """`2026-11-24` for a day, `2026-11` for a month."""
    day = local_time(now, tz).date().isoformat()  # YYYY-MM-DD; strftime takes several times longer (every call)
    if period == "day":
        return day
    if period == "month":
        return day[:7]
    raise ConfigurationError(f"unknown budget period {period!r}; use one of {', '.join(PERIODS)}")


def window_key(scope: str, period: Period, now: float | datetime, tz: str | tzinfo | None = None) -> str:
    """The ledger key of `scope`'s budget for the window containing `now`: `<scope>:<period>:<label>`."""
    if not isinstance(scope, str) or not scope.strip() or "\n" in scope:
        raise ConfigurationError(f"budget scope must be a non-empty single-line string, got {scope!r}")
    return f"{scope}:{period}:{window_label(period, now, tz)}"


def user_scope(user_id: str) -> str:
    return f"user:{_check_id(user_id, 'user_id')}"


def agent_scope(agent_id: str) -> str:
    return f"agent:{_check_id(agent_id, 'agent_id')}"


GLOBAL_SCOPE = "global"


def _check_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or "\n" in value:
        raise ConfigurationError(f"{what} must be a non-empty single-line string, got {value!r}")
    return value


# Time zones reach UTC+14; a window's key is kept one more day past that so late settles still find it.
WINDOW_GRACE_SECONDS = 2 * 86400
_WINDOW_IN_KEY = re.compile(r":(day):(\d{4})-(\d{2})-(\d{2})$|:(month):(\d{4})-(\d{2})$")


@functools.lru_cache(maxsize=4096)  # a process charges few distinct keys, on every reservation
def key_window_end(key: str) -> float | None:
    """Epoch seconds after which no clock in any time zone is still inside the window a budget key names
    (`...:day:2026-11-24`, `...:month:2026-11`), plus a grace period; None for a key without a window."""
    match = _WINDOW_IN_KEY.search(key)
    if match is None:
        return None
    try:
        if match.group(1):
            start = datetime(int(match.group(2)), int(match.group(3)), int(match.group(4)), tzinfo=UTC)
            end = start + timedelta(days=1)
        else:
            year, month = int(match.group(6)), int(match.group(7))
            datetime(year, month, 1)  # raises for a month outside 1..12
            end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    except ValueError:  # a label that is no date (month 13): the key is kept like one without a window
        return None
    return end.timestamp() + WINDOW_GRACE_SECONDS
