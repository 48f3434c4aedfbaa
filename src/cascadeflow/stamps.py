"""What stamps every call and record: the request id, the ISO-8601 timestamp and the rounded latencies. All are
taken on every call's path, so each is built to cost no system call beyond reading the clock, and none goes
through CPython's decimal conversion or format-spec code."""

from __future__ import annotations

import itertools
import os
import time

_iso_second: tuple[int, str] = (-1, "")  # (epoch second, its "YYYY-MM-DDTHH:MM:SS"), swapped whole
# ".000Z" ... ".999Z": the millisecond suffixes, looked up rather than formatted (no format-spec parsing on
# every record)
_MILLIS = tuple(f".{millis:03d}Z" for millis in range(1000))


def now_iso() -> str:
    """Now as ISO-8601 UTC with milliseconds (`2026-11-24T14:46:03.120Z`); the formatted second is cached
    because every decision and audit record takes a timestamp."""
    global _iso_second
    second, nanos = divmod(time.time_ns(), 1_000_000_000)
    cached = _iso_second
    if cached[0] != second:
        cached = _iso_second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return cached[1] + _MILLIS[nanos // 1_000_000]


def round_ms(ms: float) -> float:
    """A duration in ms rounded to the µs (half up), as the audit records carry it. Integer arithmetic, not
    round(ms, 3): that goes through CPython's decimal conversion code, which an SDK call leaves out of the CPU
    caches, so on an instrumented call it costs several µs more."""
    return int(ms * 1000.0 + 0.5) / 1000 if ms >= 0.0 else round(ms, 3)


_BIT_64 = 1 << 64


class _RequestIds:
    """Request ids: a 64-bit prefix drawn from the OS's CSPRNG once per process (again in a forked child)
    followed by a 64-bit counter, as 32 hex digits (the format of uuid4().hex). Ids made by any number of
    processes and machines sharing a ledger or an audit log collide only if two processes draw the same
    prefix (about n**2 / 2**65 for n processes); within a process they never repeat. One OS read per process
    instead of one per call: the id is taken on every call's path."""

    def __init__(self) -> None:
        self.reseed()
        if hasattr(os, "register_at_fork"):  # POSIX only; without fork there is no child to reseed
            os.register_at_fork(after_in_child=self.reseed)

    def reseed(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count()

    def next(self) -> str:
        # next() on an itertools.count is atomic under the GIL: threads never share an id. The counter's 16
        # hex digits with zeros in front: hex() of it with bit 64 set, less "0x1" (no format-spec parsing).
        count = next(self.counter)
        return self.prefix + (hex(count | _BIT_64)[3:] if count < _BIT_64 else f"{count:x}")


_request_ids = _RequestIds()


def new_request_id() -> str:
    """A request id unique across processes and machines (see `_RequestIds`)."""
    return _request_ids.next()
