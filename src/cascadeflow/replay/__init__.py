"""Replay: the recorded-outcome format, converters, the replay engine over the real cascade, and reports.

Names are loaded on first use, so reading or converting a recorded-outcome file (`replay.format`,
`replay.converters`) does not load the engine and the cascade above it.
"""

from __future__ import annotations

from typing import Any

from cascadeflow.lazy import lazy_attribute

_WHERE = {
    "OperatingPoint": "report", "QueryOutcome": "report",
    "RecordedAnswer": "format", "RecordedQuery": "format", "ReplayDataset": "format",
    "dump_dataset": "format", "load_dataset": "format",
    "ReplaySetup": "engine", "fit_calibration": "engine", "record_verdicts": "engine", "replay": "engine",
    "replay_sync": "engine", "run_study_sync": "study",
    "sweep": "engine", "sweep_recorded": "engine",
    "convert": "converters", "cross_validate": "study", "run_study": "study",
    "evaluate": "evaluation",
    "ThresholdTuning": "tuning", "tune_threshold": "tuning", "tune_threshold_sync": "tuning",
}

__all__ = [
    "OperatingPoint", "QueryOutcome", "RecordedAnswer", "RecordedQuery", "ReplayDataset", "ReplaySetup",
    "ThresholdTuning", "convert", "cross_validate", "dump_dataset", "evaluate", "fit_calibration",
    "load_dataset", "record_verdicts", "replay", "replay_sync", "run_study", "run_study_sync", "sweep",
    "sweep_recorded", "tune_threshold", "tune_threshold_sync",
]


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, _WHERE, name)
