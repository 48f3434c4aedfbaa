"""The `Signal` type every validator returns: one named, scored piece of evidence about a draft."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from cascadeflow.errors import ConfigurationError
from cascadeflow.messages import Request, Response


@dataclass(frozen=True, slots=True)
class Signal:
    """One named piece of evidence: `score` 0..1 (higher = the draft is more likely right), a reason for
    traces, and `veto` for hard rejects (empty, truncated, refusal, invalid JSON, wrong arithmetic)."""

    name: str
    score: float
    reason: str
    veto: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.score, (int, float)) or math.isnan(self.score) or not 0.0 <= self.score <= 1.0:
            raise ConfigurationError(f"signal {self.name!r}: score must be a number in 0..1, got {self.score!r}")


Check = Callable[[Request, Response], Signal | None]
"""A validator: `check(request, response) -> Signal | None`; None means the signal is not available."""
