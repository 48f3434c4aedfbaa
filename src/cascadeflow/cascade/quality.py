"""Quality validation: `QualityConfig` and `assess()`, which turns a draft's signals into an accept/reject `Verdict`.

Combination without a calibration: any veto rejects; otherwise the score is the *minimum* of the present
signals' scores (the weakest evidence decides, so a strong signal can never hide a failed one) and the draft
is accepted when that score reaches the threshold. With a calibration loaded the score is the fitted
probability that the draft is right, and the threshold is read as that probability. Signals that are not
available (no logprobs, no JSON asked for, no arithmetic written) are left out, never filled in.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cascadeflow.cascade.calibration import Calibration
from cascadeflow.cascade.validators import (
    answer_consistency,
    answer_form,
    answer_length,
    arithmetic,
    code,
    logprob,
    quantity_coverage,
    relevance,
    self_correction,
    structure,
    tool_args,
)
from cascadeflow.cascade.validators import format as format_check
from cascadeflow.cascade.validators.base import Check, Signal
from cascadeflow.errors import ConfigurationError
from cascadeflow.messages import Request, Response

logger = logging.getLogger(__name__)

__all__ = [
    "BUILTIN_SIGNALS",
    "COMPLEXITY_LEVELS",
    "DEFAULT_SIGNALS",
    "PRESETS",
    "SOFT_SIGNALS",
    "QualityConfig",
    "Signal",
    "Validator",
    "Verdict",
    "assess",
    "collect_signals",
    "combine",
]

Validator = Callable[[Request, Response], Signal | float | bool | None]

DEFAULT_SIGNALS: tuple[str, ...] = ("structure", "format", "tool_args", "logprob", "relevance", "arithmetic", "code")
# Evidence that only means something once a calibration has weighed it on labelled outcomes (a worked answer
# that skips a given number is *more often* wrong, not wrong): off by default, and switched on by a loaded
# calibration that was fitted with them, or by naming them in `signals=`.
SOFT_SIGNALS: tuple[str, ...] = ("answer_form", "answer_consistency", "quantity_coverage", "self_correction",
                                 "answer_length")
BUILTIN_SIGNALS: tuple[str, ...] = DEFAULT_SIGNALS + SOFT_SIGNALS
COMPLEXITY_LEVELS: tuple[str, ...] = ("simple", "moderate", "hard", "expert")


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision on one draft, with the evidence it rests on."""

    accepted: bool
    score: float  # combined; a calibrated probability when `calibrated`
    threshold: float  # the bar actually applied (complexity threshold + raise_bar)
    signals: tuple[Signal, ...]  # only signals that were actually present
    reason: str
    calibrated: bool = False

    @property
    def used(self) -> tuple[str, ...]:
        """Names of the signals the decision used."""
        return tuple(s.name for s in self.signals)

    @property
    def vetoes(self) -> tuple[Signal, ...]:
        return tuple(s for s in self.signals if s.veto)

    def signal(self, name: str) -> Signal | None:
        return next((s for s in self.signals if s.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape for traces and logs."""
        return {"accepted": self.accepted, "score": self.score, "threshold": self.threshold,
                "calibrated": self.calibrated, "reason": self.reason, "used": list(self.used),
                "signals": [{"name": s.name, "score": s.score, "reason": s.reason, "veto": s.veto}
                            for s in self.signals]}


def _check_unit(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or not 0 <= value <= 1:
        raise ConfigurationError(f"QualityConfig: {name} must be a number between 0 and 1, got {value!r}")
    return float(value)


def _check_levels(levels: Mapping[str, float] | None) -> dict[str, float] | None:
    if levels is None:
        return None
    if not isinstance(levels, Mapping):
        raise ConfigurationError("QualityConfig: thresholds_by_complexity must be a dict like {'simple': 0.6}")
    unknown = sorted(str(k) for k in levels if k not in COMPLEXITY_LEVELS)
    if unknown:  # custom routers may use their own levels, so only warn: a typo would never apply
        logger.warning("thresholds_by_complexity has levels %s that the built-in complexity router never "
                       "produces (it uses %s)", unknown, ", ".join(COMPLEXITY_LEVELS))
    return {str(k): _check_unit(f"thresholds_by_complexity[{k!r}]", v) for k, v in levels.items()}


def _check_validators(validators: Sequence[Validator] | None) -> tuple[Validator, ...]:
    if callable(validators):
        validators = (validators,)
    out = tuple(validators or ())
    for v in out:
        if not callable(v):
            raise ConfigurationError(f"QualityConfig: validators must be callables (request, response), got {v!r}")
    return out


def _check_signal_names(signals: Sequence[str]) -> tuple[str, ...]:
    names = (signals,) if isinstance(signals, str) else tuple(signals)
    unknown = sorted(set(names) - set(BUILTIN_SIGNALS))
    if unknown:
        raise ConfigurationError(f"QualityConfig: unknown signals {unknown}; choose from {', '.join(BUILTIN_SIGNALS)}")
    return names


@dataclass(frozen=True, slots=True, init=False)
class QualityConfig:
    """How drafts are judged. `confidence_threshold=` is an alias of `threshold=` (both spellings are in use).

    threshold: the bar a draft's combined score must reach (a probability when a calibration is loaded).
    thresholds_by_complexity: per complexity level ("simple", "moderate", "hard", "expert") bars.
    min_length: the fewest characters an answer may have (after stripping whitespace).
    required_format: "json" to require a JSON answer; json_schema additionally validates it.
    validators: extra callables (request, response) -> Signal | float | bool | None.
    calibration: a fitted `Calibration`, or the path of one saved with `Calibration.save`.
    signals: which built-in signals run (DEFAULT_SIGNALS by default; a loaded calibration also turns on the
        built-in signals it was fitted with, so its features are computed).
    """

    threshold: float
    thresholds_by_complexity: Mapping[str, float] | None
    min_length: int
    required_format: str | None
    json_schema: Mapping[str, Any] | None
    validators: tuple[Validator, ...]
    calibration: Calibration | None
    signals: tuple[str, ...]
    _checks: tuple[Check, ...] = field(init=False, repr=False, compare=False)

    def __init__(
        self,
        threshold: float | None = None,
        *,
        confidence_threshold: float | None = None,
        thresholds_by_complexity: Mapping[str, float] | None = None,
        min_length: int = 0,
        required_format: str | None = None,
        json_schema: Mapping[str, Any] | None = None,
        validators: Sequence[Validator] = (),
        calibration: Calibration | str | Path | None = None,
        signals: Sequence[str] = DEFAULT_SIGNALS,
    ) -> None:
        set_ = functools.partial(object.__setattr__, self)
        if threshold is not None and confidence_threshold is not None and threshold != confidence_threshold:
            raise ConfigurationError(f"QualityConfig: threshold={threshold!r} and confidence_threshold="
                                     f"{confidence_threshold!r} disagree; pass only one (they are aliases)")
        bar = threshold if threshold is not None else confidence_threshold
        set_("threshold", _check_unit("threshold", 0.7 if bar is None else bar))
        set_("thresholds_by_complexity", _check_levels(thresholds_by_complexity))
        if isinstance(min_length, bool) or not isinstance(min_length, int) or min_length < 0:
            raise ConfigurationError(f"QualityConfig: min_length must be a non-negative integer, got {min_length!r}")
        set_("min_length", min_length)
        if required_format not in (None, "json"):
            raise ConfigurationError(f"QualityConfig: required_format must be None or 'json', got {required_format!r}")
        if json_schema is not None:
            format_check.compile_schema(json_schema)  # raises ConfigurationError on an invalid schema
            required_format = "json"
        set_("required_format", required_format)
        set_("json_schema", json_schema)
        set_("validators", _check_validators(validators))
        set_("signals", _check_signal_names(signals))
        if isinstance(calibration, (str, Path)):
            calibration = Calibration.load(calibration)
        elif calibration is not None and not isinstance(calibration, Calibration):
            raise ConfigurationError("QualityConfig: calibration must be a Calibration or the path of a saved one")
        set_("calibration", calibration)
        set_("_checks", self._build_checks())

    @property
    def confidence_threshold(self) -> float:
        """Alias of `threshold`."""
        return self.threshold

    def _build_checks(self) -> tuple[Check, ...]:
        table: dict[str, Check] = {
            "structure": functools.partial(structure.check, min_length=self.min_length),
            "format": functools.partial(format_check.check, required=self.required_format == "json",
                                        schema=self.json_schema),
            "tool_args": tool_args.check,
            "logprob": logprob.check,
            "relevance": relevance.check,
            "arithmetic": arithmetic.check,
            "code": code.check,
            "answer_form": answer_form.check,
            "answer_consistency": answer_consistency.check,
            "quantity_coverage": quantity_coverage.check,
            "self_correction": self_correction.check,
            "answer_length": answer_length.check,
        }
        wanted = set(self.signals)
        if self.calibration is not None:  # a calibration's features must be computed to mean anything
            wanted.update(name for name in self.calibration.features if name in SOFT_SIGNALS)
        return tuple(table[name] for name in BUILTIN_SIGNALS if name in wanted)

    def threshold_for(self, complexity: str | None = None) -> float:
        """The bar for a complexity level (the plain threshold when the level has none)."""
        if complexity is not None and self.thresholds_by_complexity:
            return self.thresholds_by_complexity.get(complexity, self.threshold)
        return self.threshold

    def with_(self, **changes: Any) -> QualityConfig:
        """A copy with some fields changed (validated like the constructor)."""
        return replace(self, **changes)

    @classmethod
    def strict(cls, **overrides: Any) -> QualityConfig:
        """Escalate unless the draft is clearly good: high bars, rising with complexity."""
        return cls(**{**PRESETS["strict"], **overrides})

    @classmethod
    def balanced(cls, **overrides: Any) -> QualityConfig:
        """The default trade-off between cost and quality."""
        return cls(**{**PRESETS["balanced"], **overrides})

    @classmethod
    def cost_optimized(cls, **overrides: Any) -> QualityConfig:
        """Accept drafts readily; only clear failures escalate."""
        return cls(**{**PRESETS["cost_optimized"], **overrides})

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> QualityConfig:
        key = name.strip().lower().replace("-", "_")
        if key not in PRESETS:
            raise ConfigurationError(f"unknown quality preset {name!r}; choose from {', '.join(PRESETS)}")
        return cls(**{**PRESETS[key], **overrides})


PRESETS: dict[str, dict[str, Any]] = {
    "strict": {"threshold": 0.85, "min_length": 1,
               "thresholds_by_complexity": {"simple": 0.8, "moderate": 0.85, "hard": 0.9, "expert": 0.95}},
    "balanced": {"threshold": 0.7,
                 "thresholds_by_complexity": {"simple": 0.6, "moderate": 0.7, "hard": 0.75, "expert": 0.8}},
    "cost_optimized": {"threshold": 0.5,
                       "thresholds_by_complexity": {"simple": 0.4, "moderate": 0.5, "hard": 0.55, "expert": 0.6}},
}


def _custom_name(validator: Validator) -> str:
    name = getattr(validator, "__name__", None) or type(validator).__name__
    return "custom" if name == "<lambda>" else name


def _as_signal(validator: Validator, value: Any) -> Signal | None:
    """Normalise what a custom validator returned; a wrong type is the validator's bug, said plainly."""
    if value is None or isinstance(value, Signal):
        return value
    name = _custom_name(validator)
    if isinstance(value, bool):
        return Signal(name, 1.0, f"{name}: passed") if value else Signal(name, 0.0, f"{name}: failed", veto=True)
    if isinstance(value, (int, float)) and not math.isnan(value) and 0 <= value <= 1:
        return Signal(name, float(value), f"{name}: {value:.2f}")
    raise ConfigurationError(f"validator {name!r} returned {value!r}; return a Signal, a float in 0..1, "
                             f"a bool (False rejects) or None (no evidence)")


def collect_signals(request: Request, response: Response, config: QualityConfig) -> tuple[Signal, ...]:
    """Run the enabled built-in checks, then the custom validators; absent signals are left out."""
    found: list[Signal] = []
    for check in config._checks:
        sig = check(request, response)
        if sig is not None:
            found.append(sig)
    for validator in config.validators:
        sig = _as_signal(validator, validator(request, response))
        if sig is not None:
            found.append(sig)
    return tuple(found)


def combine(signals: Sequence[Signal]) -> float:
    """The uncalibrated score: the weakest present signal (0.0 with no evidence at all)."""
    return min((s.score for s in signals), default=0.0)


def assess(request: Request, response: Response, config: QualityConfig | None = None, *,
           complexity: str | None = None, raise_bar: float = 0.0) -> Verdict:
    """Judge one draft: accept when no signal vetoes and the combined score reaches the bar.

    `complexity` picks a per-level threshold; `raise_bar` is added to it (the budget runtime raises the bar
    near a limit). The bar is clipped to 0..1.
    """
    config = config if config is not None else _DEFAULT_CONFIG
    if not isinstance(raise_bar, (int, float)) or math.isnan(raise_bar):
        raise ConfigurationError(f"raise_bar must be a number, got {raise_bar!r}")
    bar = min(1.0, max(0.0, config.threshold_for(complexity) + raise_bar))
    signals = collect_signals(request, response, config)
    calibrated = config.calibration is not None
    score = config.calibration.predict(signals) if config.calibration is not None else combine(signals)
    accepted, reason = _decide(signals, score, bar, calibrated)
    return Verdict(accepted=accepted, score=score, threshold=bar, signals=signals, reason=reason,
                   calibrated=calibrated)


def _decide(signals: Sequence[Signal], score: float, bar: float, calibrated: bool) -> tuple[bool, str]:
    label = "p" if calibrated else "score"
    names = ", ".join(s.name for s in signals)
    vetoes = [s for s in signals if s.veto]
    if vetoes:
        return False, "rejected: " + "; ".join(f"{s.name}: {s.reason}" for s in vetoes)
    if not signals:
        return False, "rejected: no signal was available to judge the draft"
    if score >= bar:
        return True, f"accepted: {label}={score:.2f} >= {bar:.2f} ({names})"
    weakest = min(signals, key=lambda s: s.score)
    return False, f"rejected: {label}={score:.2f} < {bar:.2f}; weakest {weakest.name}: {weakest.reason} ({names})"


_DEFAULT_CONFIG = QualityConfig()
