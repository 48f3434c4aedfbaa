"""Hand a finished call's audit record to the agent's record observers (metrics, anomaly detection, alerts).

The record is the one the pipeline wrote to its sinks; the cascade adds the two figures only it knows:
the validator's score of the returned answer and what the strongest tier alone would have cost.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from cascadeflow.errors import ConfigurationError

log = logging.getLogger(__name__)


def check_observer(value: Any, name: str) -> Any:
    """`value` unchanged when it can observe records (has `write(record, ...)`); None passes."""
    if value is not None and not callable(getattr(value, "write", None)):
        raise ConfigurationError(f"{name} must be an object with write(record), e.g. "
                                 f"cascadeflow.MetricsCollector(); got {type(value).__name__}")
    return value


def notify(observers: Sequence[Any], record: Any, result: Any = None) -> None:
    """Give every observer the record; an observer that fails is logged, never the caller's failure."""
    quality = None if result is None else result.score
    baseline = None if result is None else float(result.baseline_cost)
    for observer in observers:
        try:
            observer.write(record, quality=quality, baseline_cost=baseline)
        except Exception:
            log.exception("record observer %r failed", observer)
