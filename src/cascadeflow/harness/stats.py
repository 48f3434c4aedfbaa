"""Measured per-model statistics (exponential moving averages of latency, output tokens and observed
quality) that KPI selection reads; fed by every finished attempt and by the cascade's verdicts.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

DEFAULT_ALPHA = 0.2  # weight of the newest observation: about the last ten calls dominate


@dataclass(slots=True, kw_only=True)
class ModelStat:
    """Moving averages for one model ("provider/model"). `None` means never observed."""

    calls: int = 0
    latency_ms: float | None = None
    output_tokens: float | None = None
    quality: float | None = None  # acceptance rate / quality signal in [0, 1]
    quality_samples: int = 0


def _ema(old: float | None, new: float, alpha: float) -> float:
    return new if old is None else old + alpha * (new - old)


class ModelStats:
    """Thread-safe table of ModelStat by model id."""

    def __init__(self, alpha: float = DEFAULT_ALPHA):
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self._by_model: dict[str, ModelStat] = {}
        self._lock = threading.Lock()

    def observe_attempt(self, model_id: str, *, latency_ms: float, output_tokens: int,
                        quality: float | None = None) -> None:
        """One finished attempt; `quality` is a signal in [0, 1] when the caller has one."""
        with self._lock:
            stat = self._by_model.get(model_id)
            if stat is None:  # not setdefault: that would build a ModelStat on every call
                stat = self._by_model[model_id] = ModelStat()
            stat.calls += 1
            stat.latency_ms = _ema(stat.latency_ms, latency_ms, self.alpha)
            stat.output_tokens = _ema(stat.output_tokens, float(output_tokens), self.alpha)
            if quality is not None:
                self._quality(stat, quality)

    def observe_verdict(self, model_id: str, accepted: bool | float) -> None:
        """A validator's verdict on a model's answer (the cascade's accept / escalate)."""
        with self._lock:
            self._quality(self._by_model.setdefault(model_id, ModelStat()), float(accepted))

    def _quality(self, stat: ModelStat, value: float) -> None:
        stat.quality = _ema(stat.quality, min(max(value, 0.0), 1.0), self.alpha)
        stat.quality_samples += 1

    def get(self, model_id: str) -> ModelStat | None:
        with self._lock:
            found = self._by_model.get(model_id)
            return None if found is None else ModelStat(calls=found.calls, latency_ms=found.latency_ms,
                                                        output_tokens=found.output_tokens,
                                                        quality=found.quality,
                                                        quality_samples=found.quality_samples)

    def snapshot(self) -> dict[str, ModelStat]:
        with self._lock:
            return {k: ModelStat(calls=v.calls, latency_ms=v.latency_ms, output_tokens=v.output_tokens,
                                 quality=v.quality, quality_samples=v.quality_samples)
                    for k, v in self._by_model.items()}

    def clear(self) -> None:
        with self._lock:
            self._by_model.clear()
