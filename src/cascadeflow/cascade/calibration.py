"""Calibration: fit how signal scores map to P(draft correct) from labelled outcomes; save and load it as JSON.

The model is L2-regularised logistic regression over, for each signal name seen in training, two features:
the signal's score (0 when absent) and an "absent" indicator, so a missing signal is evidence in its own
right and never silently read as a score. With `fit(..., quadratic=True)` each signal also gets its squared
score as a feature, so the fit can learn a U-shaped effect (an answer both much shorter and much longer than
usual is more often wrong), which one straight weight per signal cannot. The fit is Newton's method in numpy (the `calibration` extra: a dozen
lines, where scikit-learn would be an optional extra for a model this small). Prediction is plain Python so
`assess()` stays fast. Labels may be known correctness or logged verifier agreement; either way, fit on one
split and report on another (`split_rows`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, Union

from cascadeflow.cascade.validators.base import Signal
from cascadeflow.errors import ConfigurationError

FORMAT = "cascadeflow-calibration"
VERSION = 1
SignalsLike = Union[Sequence[Signal], Mapping[str, float | None], Any]  # noqa: UP007 (a runtime alias)  # Any: a Verdict (has .signals)
T = TypeVar("T")


def signal_scores(signals: SignalsLike) -> dict[str, float]:
    """Name -> score of the present signals, from a Verdict, a sequence of Signals or a {name: score} dict."""
    if hasattr(signals, "signals"):
        signals = signals.signals
    if isinstance(signals, Mapping):
        return {str(k): float(v) for k, v in signals.items() if v is not None}
    return {s.name: s.score for s in signals}


@dataclass(frozen=True, slots=True)
class Calibration:
    """A fitted map from signals to the probability that a draft is correct."""

    weights: Mapping[str, tuple[float, float]]  # name -> (score weight, absent weight)
    intercept: float
    n_train: int = 0
    positive_rate: float = 0.0
    l2: float = 1.0
    meta: Mapping[str, Any] = field(default_factory=dict)
    squares: Mapping[str, float] = field(default_factory=dict)  # name -> weight of score**2 (quadratic fits)

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(self.weights)

    def predict(self, signals: SignalsLike) -> float:
        """P(draft correct) for one draft's signals; signals unseen in training are ignored."""
        scores = signal_scores(signals)
        z = self.intercept
        for name, (w_score, w_absent) in self.weights.items():
            score = scores.get(name)
            z += w_absent if score is None else w_score * score
        if self.squares:
            for name, w_square in self.squares.items():
                score = scores.get(name)
                if score is not None:
                    z += w_square * score * score
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0

    @classmethod
    def fit(cls, rows: Iterable[tuple[SignalsLike, bool]], *, l2: float = 1.0, quadratic: bool = False,
            meta: Mapping[str, Any] | None = None) -> Calibration:
        """Fit on labelled rows `(signals, correct)`; needs both outcomes present. `quadratic=True` adds each
        signal's squared score as a feature."""
        np = _numpy()
        data = [(signal_scores(s), bool(ok)) for s, ok in rows]
        labels = np.array([ok for _, ok in data], dtype=float)
        if len(data) < 2 or labels.min() == labels.max():
            raise ConfigurationError("calibration needs labelled rows with both correct and incorrect drafts "
                                     f"(got {len(data)} rows, {int(labels.sum()) if len(data) else 0} correct)")
        if not l2 > 0:
            raise ConfigurationError(f"l2 must be positive, got {l2!r}")
        names = sorted({name for scores, _ in data for name in scores})
        width = 3 if quadratic else 2
        x = np.ones((len(data), 1 + width * len(names)))
        for i, (scores, _) in enumerate(data):
            for j, name in enumerate(names):
                score = scores.get(name)
                x[i, 1 + width * j] = 0.0 if score is None else score
                x[i, 2 + width * j] = 1.0 if score is None else 0.0
                if quadratic:
                    x[i, 3 + width * j] = 0.0 if score is None else score * score
        beta = _newton_logistic(x, labels, l2)
        weights = {name: (float(beta[1 + width * j]), float(beta[2 + width * j])) for j, name in enumerate(names)}
        squares = {name: float(beta[3 + width * j]) for j, name in enumerate(names)} if quadratic else {}
        return cls(weights=weights, intercept=float(beta[0]), n_train=len(data),
                   positive_rate=float(labels.mean()), l2=l2, meta=dict(meta or {}), squares=squares)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "method": "logistic", "intercept": self.intercept,
                "weights": {k: {"score": s, "absent": a, **({"square": self.squares[k]} if k in self.squares else {})}
                            for k, (s, a) in self.weights.items()},
                "n_train": self.n_train, "positive_rate": self.positive_rate, "l2": self.l2, "meta": dict(self.meta)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        if not isinstance(data, Mapping) or data.get("format") != FORMAT or data.get("version") != VERSION:
            raise ConfigurationError(f"not a {FORMAT} v{VERSION} file (save one with Calibration.save)")
        try:
            weights = {str(k): (float(v["score"]), float(v["absent"])) for k, v in data["weights"].items()}
            squares = {str(k): float(v["square"]) for k, v in data["weights"].items() if "square" in v}
            return cls(weights=weights, intercept=float(data["intercept"]), n_train=int(data.get("n_train", 0)),
                       positive_rate=float(data.get("positive_rate", 0.0)), l2=float(data.get("l2", 1.0)),
                       meta=dict(data.get("meta") or {}), squares=squares)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigurationError(f"malformed calibration data: {exc!r}") from None

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigurationError(f"calibration file not found: {path}") from None
        except ValueError as exc:
            raise ConfigurationError(f"calibration file {path} is not JSON: {exc}") from None
        return cls.from_dict(data)


def _newton_logistic(x: Any, y: Any, l2: float, iterations: int = 50) -> Any:
    """Maximum a-posteriori logistic regression (Gaussian prior, intercept unpenalised) by Newton steps."""
    np = _numpy()

    beta = np.zeros(x.shape[1])
    penalty = np.full(x.shape[1], l2)
    penalty[0] = 1e-6
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ beta, -30, 30)))
        gradient = x.T @ (p - y) + penalty * beta
        hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if float(np.max(np.abs(step))) < 1e-8:
            break
    return beta


def in_eval_split(key: object, eval_fraction: float = 0.3, salt: str = "cascadeflow") -> bool:
    """Deterministic membership of the evaluation split: a hash of the key, not of the run or row order."""
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < eval_fraction


def split_rows(rows: Iterable[T], key: Callable[[T], object], *, eval_fraction: float = 0.3,
               salt: str = "cascadeflow") -> tuple[list[T], list[T]]:
    """(train, eval) by hashing each row's key (e.g. the query id): fit on train, report on eval only."""
    if not 0 < eval_fraction < 1:
        raise ConfigurationError(f"eval_fraction must be between 0 and 1, got {eval_fraction!r}")
    train: list[T] = []
    held_out: list[T] = []
    for row in rows:
        (held_out if in_eval_split(key(row), eval_fraction, salt) else train).append(row)
    return train, held_out


def brier_score(calibration: Calibration, rows: Iterable[tuple[SignalsLike, bool]]) -> float:
    """Mean squared error of the predicted probabilities on labelled rows (lower is better)."""
    errors = [(calibration.predict(s) - float(bool(ok))) ** 2 for s, ok in rows]
    if not errors:
        raise ConfigurationError("brier_score needs at least one labelled row")
    return sum(errors) / len(errors)


def _numpy() -> Any:
    """numpy, needed to fit a calibration (applying one needs nothing beyond the core)."""
    try:
        import numpy
    except ImportError:
        raise ConfigurationError('fitting a calibration needs numpy: pip install "cascadeflow[calibration]"') \
            from None
    return numpy
