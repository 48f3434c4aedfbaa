"""Reading audit logs back: rotated JSONL files in order (torn or corrupt lines skipped and reported),
SQLite databases, filters, and summaries by model, action or any metadata key."""

from __future__ import annotations

import fnmatch
import json
import logging
import math
import os
import re
import statistics
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from cascadeflow.errors import ConfigurationError
from cascadeflow.trace.events import is_event

log = logging.getLogger(__name__)

SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
SQLITE_SCHEME = "sqlite:///"


@dataclass(frozen=True, slots=True)
class SkippedLine:
    """A line a reader could not use: where it was and why."""

    path: str
    line: int
    reason: str  # "torn last line" | "invalid JSON" | "not a JSON object" | "wrong shape: ..."

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


def log_files(path: str | os.PathLike[str]) -> list[Path]:
    """The log and its rotated backups, oldest first (`audit.jsonl.3`, `.2`, `.1`, `audit.jsonl`)."""
    base = Path(path)
    pattern = re.compile(re.escape(base.name) + r"\.(\d+)$")
    backups: list[tuple[int, Path]] = []
    if base.parent.exists():
        for candidate in base.parent.iterdir():
            match = pattern.match(candidate.name)
            if match:
                backups.append((int(match.group(1)), candidate))
    ordered = [p for _, p in sorted(backups, reverse=True)]
    if base.exists():
        ordered.append(base)
    return ordered


def parse_lines(data: bytes, path: str, skipped: list[SkippedLine], *, first_line: int = 1) -> Iterator[dict]:
    """Records in `data` (whole lines of one file); unusable lines are appended to `skipped`."""
    lines = data.split(b"\n")
    tail = lines.pop()  # after the last newline: empty, or a line whose writer was killed mid-write
    for number, raw in enumerate(lines, start=first_line):
        if not raw.strip():
            continue
        record = _parse(raw, path, number, skipped)
        if record is not None:
            yield record
    if tail.strip():
        skipped.append(SkippedLine(path, first_line + len(lines), "torn last line"))


def _parse(raw: bytes, path: str, number: int, skipped: list[SkippedLine]) -> dict | None:
    try:
        record = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        skipped.append(SkippedLine(path, number, "invalid JSON"))
        return None
    except RecursionError:  # valid JSON nested deeper than the parser's stack
        skipped.append(SkippedLine(path, number, "invalid JSON (nested too deeply)"))
        return None
    if not isinstance(record, dict):
        skipped.append(SkippedLine(path, number, "not a JSON object"))
        return None
    problem = shape_problem(record)
    if problem is not None:
        skipped.append(SkippedLine(path, number, f"wrong shape: {problem}"))
        return None
    return record


_NUMBER_FIELDS = ("cost_usd", "latency_ms", "budget_remaining", "input_tokens", "output_tokens")
_TEXT_FIELDS = ("timestamp", "request_id", "run_id", "user_id", "agent_id", "mode", "action", "model_requested",
                "model_selected", "routing_reason", "price_version", "error")
_TIER_NUMBER_FIELDS = ("cost_usd", "latency_ms", "input_tokens", "output_tokens", "max_tokens")


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):  # JSON integers are unbounded; past 64 bits float() and the summaries overflow
        return -(2**63) <= value < 2**63
    return isinstance(value, float) and math.isfinite(value)


def shape_problem(record: dict[str, Any]) -> str | None:
    """Why a parsed line cannot be read as an audit record (a field of the wrong type), or None.

    Fields may be missing (other tools write fewer), or null; a field that is present must have its type, so
    the summaries and the CLI can read every record they are given."""
    for name in _NUMBER_FIELDS:
        if record.get(name) is not None and not _is_number(record[name]):
            return f"{name} is not a number"
    for name in _TEXT_FIELDS:
        if record.get(name) is not None and not isinstance(record[name], str):
            return f"{name} is not a string"
    if record.get("metadata") is not None and not isinstance(record["metadata"], dict):
        return "metadata is not an object"
    tiers = record.get("tiers")
    if tiers is not None:
        if not isinstance(tiers, list) or not all(isinstance(t, dict) for t in tiers):
            return "tiers is not a list of objects"
        for tier in tiers:
            if any(tier.get(n) is not None and not _is_number(tier[n]) for n in _TIER_NUMBER_FIELDS):
                return "a tier has a field that is not a number"
    return None


def is_sqlite(source: str | os.PathLike[str]) -> bool:
    text = str(source)
    return text.startswith(SQLITE_SCHEME) or text.endswith(SQLITE_SUFFIXES)


def sqlite_path(source: str | os.PathLike[str]) -> Path:
    text = str(source)
    return Path(text.removeprefix(SQLITE_SCHEME))


def iter_records(source: str | os.PathLike[str], skipped: list[SkippedLine] | None = None,
                 where: RecordFilter | None = None) -> Iterator[dict[str, Any]]:
    """Every record of a JSONL log (with its rotated files) or SQLite database, oldest first."""
    skipped = [] if skipped is None else skipped
    where = where or RecordFilter()
    if is_sqlite(source):
        from cascadeflow.trace.sqlite import read_sqlite

        until = where.until + timedelta(seconds=1) if where.until is not None else None
        rows = read_sqlite(sqlite_path(source), since=_iso(where.since), until=_iso(until),
                           **where.sql_equals())
        yield from (r for r in rows if where.matches(r))
        return
    files = log_files(source)
    if not files:
        raise ConfigurationError(f"no audit log at {source}; pass a path or set CASCADEFLOW_AUDIT_PATH")
    for file in files:
        try:
            data = file.read_bytes()
        except FileNotFoundError:  # rotated away between listing and reading
            continue
        yield from (r for r in parse_lines(data, str(file), skipped) if where.matches(r))


@dataclass(slots=True)
class LogContents:
    records: list[dict[str, Any]]
    skipped: list[SkippedLine] = field(default_factory=list)


def read_log(source: str | os.PathLike[str], where: RecordFilter | None = None) -> LogContents:
    """All (matching) records and the lines that had to be skipped."""
    skipped: list[SkippedLine] = []
    records = list(iter_records(source, skipped, where))
    return LogContents(records, skipped)


def parse_time(text: str, *, now: datetime | None = None) -> datetime:
    """An ISO-8601 timestamp (UTC when no zone is given) or a look-back like `30s`, `15m`, `2h`, `7d`."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
        return (now or datetime.now(UTC)) - timedelta(**{unit: float(match.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigurationError(
            f"cannot read time {text!r}: use ISO-8601 (2026-06-15T03:42:11Z) or a look-back such as 15m, 2h, 7d"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    # SQL pre-filter only (exact times are checked in Python): whole seconds, widened by the caller, so a
    # text comparison against stored timestamps with or without fractions never drops a matching row
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def record_time(record: dict[str, Any]) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(record.get("timestamp")))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class RecordFilter:
    """Which records to keep. `model` accepts shell wildcards (`groq/*`); times are inclusive."""

    run_id: str | None = None
    user_id: str | None = None
    model: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def sql_equals(self) -> dict[str, str | None]:
        wildcard = self.model is not None and any(c in self.model for c in "*?[")
        return {"run_id": self.run_id, "user_id": self.user_id, "action": self.action,
                "model": None if wildcard else self.model}

    def matches(self, record: dict[str, Any]) -> bool:
        if self.run_id is not None and record.get("run_id") != self.run_id:
            return False
        if self.user_id is not None and record.get("user_id") != self.user_id:
            return False
        if self.action is not None and record.get("action") != self.action:
            return False
        if self.model is not None:
            model = record.get("model_selected") or record.get("model_requested") or ""
            if not fnmatch.fnmatchcase(str(model), self.model):
                return False
        if self.since is not None or self.until is not None:
            moment = record_time(record)
            if moment is None:
                return False
            if (self.since is not None and moment < self.since) or (self.until is not None and moment > self.until):
                return False
        return True


@dataclass(frozen=True, slots=True)
class GroupSummary:
    """Totals for one group of records. `count` counts every record; `not_sent` those refused before any
    model was called (a budget or policy stop with no attempt). The latency percentiles are over the sent
    calls only, since a refusal's few µs would drag them towards zero; None when none was sent."""

    key: str
    count: int
    cost_usd: float
    input_tokens: int
    output_tokens: int
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    errors: int
    not_sent: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def was_sent(record: dict[str, Any]) -> bool:
    """Whether the call reached a model: a record whose `tiers` list is empty was refused before sending.
    A record without `tiers` (written by another tool) is taken as sent."""
    tiers = record.get("tiers")
    return not isinstance(tiers, list) or bool(tiers)


def group_key(record: dict[str, Any], by: str) -> str:
    """The value of `by` in a record: a field, a caller metadata key, or `model` (the model that served; for a
    call stopped after some attempts, the last model it reached; for one refused before sending, the model
    it asked for)."""
    if by == "model":  # a stopped call has no model_selected: the last model it reached, else the one requested
        value = record.get("model_selected") or _last_tier_model(record) or record.get("model_requested")
    else:
        value = record.get(by)
        if value is None:
            value = (record.get("metadata") or {}).get(by)
    return "(none)" if value is None else str(value)


def summarise(records: Iterable[dict[str, Any]], by: str = "model") -> list[GroupSummary]:
    """Count, cost, tokens and latency per group of calls, most expensive group first (event records, such
    as anomalies, are not calls and are left out)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        if not is_event(record):
            groups.setdefault(group_key(record, by), []).append(record)
    out = [_summarise_group(key, members) for key, members in groups.items()]
    return sorted(out, key=lambda g: (-g.cost_usd, -g.count, g.key))


def total(records: Iterable[dict[str, Any]]) -> GroupSummary | None:
    """Totals over all calls (None when there are none; event records are left out)."""
    members = [r for r in records if not is_event(r)]
    return _summarise_group("total", members) if members else None


def percentile(values: list[float], q: int) -> float:
    """The q-th percentile (1..99), interpolated linearly between closest ranks like numpy's default."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _last_tier_model(record: dict[str, Any]) -> str | None:
    tiers = record.get("tiers")
    if isinstance(tiers, list) and tiers and isinstance(tiers[-1], dict):
        return tiers[-1].get("model")
    return None


def _summarise_group(key: str, records: list[dict[str, Any]]) -> GroupSummary:
    latencies = [float(r.get("latency_ms") or 0.0) for r in records if was_sent(r)]
    return GroupSummary(
        key=key,
        count=len(records),
        cost_usd=round(sum(float(r.get("cost_usd") or 0.0) for r in records), 10),
        input_tokens=sum(int(r.get("input_tokens") or 0) for r in records),
        output_tokens=sum(int(r.get("output_tokens") or 0) for r in records),
        latency_ms_p50=round(percentile(latencies, 50), 3) if latencies else None,
        latency_ms_p95=round(percentile(latencies, 95), 3) if latencies else None,
        errors=sum(1 for r in records if r.get("error")),
        not_sent=len(records) - len(latencies),
    )


def last_records(path: str | os.PathLike[str], n: int, skipped: list[SkippedLine] | None = None) -> list[dict]:
    """The last `n` records of a JSONL log, reading rotated files only as far back as needed."""
    skipped = [] if skipped is None else skipped
    if is_sqlite(path):
        return list(iter_records(path, skipped))[-n:] if n > 0 else []
    files = log_files(path)
    if not files:
        raise ConfigurationError(f"no audit log at {path}; pass a path or set CASCADEFLOW_AUDIT_PATH")
    collected: list[dict] = []
    for file in reversed(files):
        if len(collected) >= n:
            break
        try:
            records = list(parse_lines(file.read_bytes(), str(file), skipped))
        except FileNotFoundError:
            continue
        collected = records + collected
    return collected[-n:] if n > 0 else []


def follow(path: str | os.PathLike[str], *, poll_seconds: float = 0.25, idle_exit_s: float | None = None,
           skipped: list[SkippedLine] | None = None) -> Iterator[dict[str, Any]]:
    """Records appended to a JSONL log after this call, across rotations; stops after `idle_exit_s` without
    new data (None: never). The position is taken now, not at the first `next()`."""
    base = Path(path)
    return _follow(base, _open_at_end(base), poll_seconds, idle_exit_s, [] if skipped is None else skipped)


def _follow(base: Path, handle: BinaryIO | None, poll_seconds: float, idle_exit_s: float | None,
            skipped: list[SkippedLine]) -> Iterator[dict[str, Any]]:
    idle_since = time.monotonic()
    pending = b""
    try:
        while True:
            chunk = handle.read() if handle else b""
            if chunk:
                complete, _, pending = (pending + chunk).rpartition(b"\n")
                yield from parse_lines(complete + b"\n", str(base), skipped, first_line=0)
                idle_since = time.monotonic()
                continue
            if _replaced(base, handle):
                pending += handle.read() if handle else b""  # the last lines written before the rotation
                done = os.fstat(handle.fileno()).st_ino if handle else None
                if handle:
                    handle.close()
                # Open the live file first, then read every backup rotated between the one just finished and
                # it: rotations racing with us land in that list instead of being skipped.
                handle = _open_from_start(base)
                live = os.fstat(handle.fileno()).st_ino if handle else None
                if done is not None:
                    for data in _rotated_between(base, done, live):
                        pending += data
                if pending.strip():
                    yield from parse_lines(pending, str(base), skipped, first_line=0)
                pending = b""
                continue
            if idle_exit_s is not None and time.monotonic() - idle_since >= idle_exit_s:
                return
            time.sleep(poll_seconds)
    finally:
        if handle:
            handle.close()


def _rotated_between(base: Path, done: int, live: int | None) -> list[bytes]:
    """Whole contents of the backups rotated after the file `done` and before the file `live` (several
    rotations can happen between two polls), oldest first. Each backup is opened before it is read: an open
    file survives the renames of a rotation racing with us, so only listing and opening must agree."""
    for _ in range(200):
        try:
            listed = [(p, p.stat().st_ino) for p in log_files(base) if p != base]
            inodes = [ino for _, ino in listed]
            if done not in inodes:
                log.warning("audit log %s rotated past the backups kept while following; records missed", base)
                return []
            newer = listed[inodes.index(done) + 1:]
            if live in inodes:
                newer = newer[:[ino for _, ino in newer].index(live)]
            opened = [open(p, "rb") for p, _ in newer]  # noqa: SIM115
        except FileNotFoundError:
            continue
        try:
            if [os.fstat(f.fileno()).st_ino for f in opened] == [ino for _, ino in newer]:
                return [f.read() for f in opened]
        finally:
            for f in opened:
                f.close()
    log.warning("audit log %s rotated repeatedly while following; some records may be missed", base)
    return []


def _open_from_start(path: Path) -> BinaryIO | None:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        return None


def _open_at_end(path: Path) -> BinaryIO | None:
    try:
        handle = open(path, "rb")  # noqa: SIM115 - held by the generator
    except FileNotFoundError:
        return None
    handle.seek(0, os.SEEK_END)
    return handle


def _replaced(path: Path, handle: BinaryIO | None) -> bool:
    try:
        live = os.stat(path)
    except FileNotFoundError:
        return False
    if handle is None:
        return True
    mine = os.fstat(handle.fileno())
    return (live.st_ino, live.st_dev) != (mine.st_ino, mine.st_dev)
