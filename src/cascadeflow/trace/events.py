"""Audit records of events that are not calls: an anomaly a detector found is written to the audit log beside
the calls it was found in, so a report or an auditor reading the log sees it: by the agent whose detector
(`CascadeAgent(anomaly_detector=...)`) found it, or by the audit delivery when the detector is one of the
runtime's sinks. Each anomaly is recorded once, whichever path saw it first.

An event record has the call record's schema with `action="anomaly"`, no model, no tokens, no cost and no
attempts; the finding is under `metadata["anomaly"]`. Everything that counts calls skips it (`is_event`).
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from cascadeflow.stamps import new_request_id, now_iso
from cascadeflow.trace.records import AuditRecord

ANOMALY_ACTION = "anomaly"
EVENT_ACTIONS = frozenset({ANOMALY_ACTION})


def is_event(record: Any) -> bool:
    """Whether an audit record (object or dict) is an event rather than a call."""
    action = record.get("action") if isinstance(record, dict) else getattr(record, "action", None)
    return action in EVENT_ACTIONS


def anomaly_record(anomaly: Any, *, mode: str, price_version: str, agent_id: str | None = None,
                   key_field: str | None = None) -> AuditRecord:
    """The record of one anomaly (an `Anomaly`: signal, key, value, score, at, method). `key_field` is what the
    detector groups by: a `user_id` key also fills the record's user_id, so a per-user report finds it."""
    finding = {"signal": anomaly.signal, "key": anomaly.key, "value": anomaly.value, "score": anomaly.score,
               "at": anomaly.at, "method": anomaly.method}
    return AuditRecord(
        timestamp=now_iso(), request_id=new_request_id(), run_id=None,
        user_id=anomaly.key if key_field == "user_id" else None, mode=mode, action=ANOMALY_ACTION,
        model_requested=None, model_selected=None,
        routing_reason=f"{anomaly.signal} of {anomaly.key} is {anomaly.value:.6g} ({anomaly.score:.1f} standard "
                       f"deviations from usual, {anomaly.method})",
        input_tokens=0, output_tokens=0, cost_usd=0.0, latency_ms=0.0, budget_remaining=None,
        price_version=price_version, metadata={"anomaly": finding}, tiers=[], agent_id=agent_id)


_recorded: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()  # detector -> anomalies recorded
_recorded_lock = threading.Lock()


def is_detector(sink: Any) -> bool:
    """Whether `sink` keeps the anomalies it found (an AnomalyDetector: its public `anomalies` list)."""
    return isinstance(getattr(sink, "anomalies", None), list)


def watch_anomalies(detector: Any) -> None:
    """From now on, anomalies `detector` finds are recorded; those it found before are not (they are no
    call's of ours). Watching a detector twice changes nothing."""
    with _recorded_lock:
        if detector not in _recorded:
            _recorded[detector] = len(detector.anomalies)


def new_anomalies(detector: Any) -> list[Any]:
    """The anomalies `detector` found since the last call, each returned once in the process whichever
    path (an agent's observers, the runtime's sinks) and thread asks."""
    with _recorded_lock:
        found = list(detector.anomalies)
        seen = _recorded.get(detector, len(found))
        _recorded[detector] = len(found)
        return found[seen:]
