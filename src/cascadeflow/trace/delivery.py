"""Delivering each call's one audit record to every sink, and the audit-failure policy.

A sink that raises is *known broken* from then on. The record it refused is appended to the spool file (a
fallback JSON-lines file, by default in the temporary directory) and kept in memory (up to MAX_PENDING
records per sink) to be written to the sink, in order, before the next record once the sink takes writes
again. A record neither a sink nor the spool took is *lost*: counted (`AuditDelivery.lost`) and logged with
the running count, never dropped silently (if its sink recovers while the record is still held, it is
written after all and no longer counted).

What the caller sees: observe mode keeps traffic flowing (calls go on; records go to the spool). Enforce
mode fails closed: before sending, `require_healthy()` retries the pending records on each broken sink and
raises AuditUnavailable if one still refuses, so no call is sent that could not be recorded.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from cascadeflow.errors import AuditUnavailable
from cascadeflow.trace.events import anomaly_record, is_detector, new_anomalies, watch_anomalies
from cascadeflow.trace.records import AuditRecord
from cascadeflow.trace.redact import record_line

log = logging.getLogger(__name__)

MAX_PENDING = 10_000  # records held per broken sink for re-delivery (all of them are in the spool as well)


class Sink(Protocol):
    """A consumer of the one audit record per call (an audit sink, a metrics exporter)."""

    def write(self, record: AuditRecord) -> None: ...


class AuditDelivery:
    """Writes every record to every sink under the audit-failure policy of the module docstring."""

    def __init__(self, sinks: Iterable[Sink] = (), *, spool: str | os.PathLike[str] | None = None):
        self.sinks: list[Sink] = list(sinks)
        self.spool = Path(spool) if spool is not None else None
        self.spooled = 0  # records written to the spool because a sink refused them
        self.lost = 0  # records neither a sink nor the spool took
        # id(sink) -> (sink, the records it owes, each with whether the spool holds it)
        self._pending: dict[int, tuple[Sink, deque[tuple[AuditRecord, bool]]]] = {}
        self._lock = threading.Lock()
        self._retrying = threading.Lock()  # one thread at a time re-writes what a sink owes (keeps the order)

    @property
    def broken(self) -> list[Sink]:
        """The sinks whose last write failed."""
        with self._lock:
            return [sink for sink, _ in self._pending.values()]

    def deliver(self, record: AuditRecord) -> None:
        """Write `record` to every sink (after what a recovered sink still owes); never raises. An anomaly
        detector among the sinks that finds anomalies on the record has them written as event records."""
        sinks = list(self.sinks)
        detectors = [sink for sink in sinks if is_detector(sink)]
        for detector in detectors:
            watch_anomalies(detector)
        for sink in sinks:
            if self._catch_up(sink):
                try:
                    sink.write(record)
                    continue
                except Exception as exc:  # noqa: BLE001 - a sink's failure must not fail the call
                    self._refused(sink, record, exc)
                    continue
            self._hold(sink, record, self._to_spool(record, sink))
        for detector in detectors:
            for anomaly in new_anomalies(detector):
                self.deliver(anomaly_record(anomaly, mode=record.mode, price_version=record.price_version,
                                            agent_id=record.agent_id, key_field=getattr(detector, "key", None)))

    def require_healthy(self) -> None:
        """Enforce mode, before sending: every broken sink must take its pending records now, or the call is
        refused (AuditUnavailable) before anything is sent."""
        if not self._pending:
            return
        for sink in self.broken:
            if not self._catch_up(sink):
                raise AuditUnavailable(f"audit sink {sink!r} is failing and enforce mode does not send calls "
                                       f"it cannot record; records are spooled to {self.spool} meanwhile. Fix "
                                       "the sink (disk space, permissions, the server) and calls resume.")

    def _catch_up(self, sink: Sink) -> bool:
        """Write what `sink` owes, in order; True when it owes nothing (now or before)."""
        with self._lock:
            entry = self._pending.get(id(sink))
        if entry is None:
            return True
        owed = entry[1]
        with self._retrying:
            if not self._write_owed(sink, owed):
                return False
        with self._lock:
            self._pending.pop(id(sink), None)
        log.warning("audit sink %r recovered: the records it refused meanwhile are written now", sink)
        return True

    def _write_owed(self, sink: Sink, owed: deque[tuple[AuditRecord, bool]]) -> bool:
        while owed:
            record, spooled = owed[0]
            try:
                sink.write(record)
            except Exception:  # noqa: BLE001 - still broken; the caller decides what that means
                return False
            owed.popleft()
            if not spooled:
                with self._lock:
                    self.lost -= 1  # counted as lost when the spool refused it; written after all
        return True

    def _refused(self, sink: Sink, record: AuditRecord, exc: Exception) -> None:
        log.error("audit sink %r failed (%s: %s); the record goes to the spool %s and is retried on the sink",
                  sink, type(exc).__name__, exc, self.spool, exc_info=exc)
        self._hold(sink, record, self._to_spool(record, sink))

    def _hold(self, sink: Sink, record: AuditRecord, spooled: bool) -> None:
        with self._lock:
            entry = self._pending.setdefault(id(sink), (sink, deque(maxlen=MAX_PENDING)))
            entry[1].append((record, spooled))  # past MAX_PENDING the oldest is only in the spool (or lost)

    def _to_spool(self, record: AuditRecord, sink: Sink) -> bool:
        """Append `record` to the spool; False (and counted as lost) when there is none or it fails."""
        if self.spool is not None:
            try:
                line = (record_line(record) + "\n").encode("utf-8")
                self.spool.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.spool, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
                             | getattr(os, "O_BINARY", 0), 0o600)
                try:
                    os.write(fd, line)
                finally:
                    os.close(fd)
            except Exception as exc:  # noqa: BLE001 - counted and logged below
                log.error("audit spool %s failed too (%s: %s)", self.spool, type(exc).__name__, exc)
            else:
                with self._lock:
                    self.spooled += 1
                return True
        with self._lock:
            self.lost += 1
            lost = self.lost
        log.error("audit record %s lost: sink %r refused it and no spool took it (%d records lost in this "
                  "process)", record.request_id, sink, lost)
        return False


def count_spooled(path: str | os.PathLike[str]) -> int:
    """The number of records in a spool file (0 when there is none)."""
    try:
        with open(path, "rb") as spool:
            return sum(1 for line in spool if line.strip())
    except FileNotFoundError:
        return 0
