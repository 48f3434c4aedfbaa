"""`AnomalyDetector`: streaming anomaly detection on cost rate, call rate, cost per call, verifier share and
latency, per key.

Records are summed into time buckets (`bucket_seconds`, per key: all calls, or per user / metadata value);
each closed bucket gives one value per signal, scored by a streaming scorer: `method="agreement"` (the
default: large by robust statistics AND a new shape; the one method measured to meet the targets both on
LLM cost series and on NAB's infrastructure and traffic metrics), `"robust"`, `"novelty"` or `"zscore"`
(the plain rolling z-score). A signal becomes anomalous when its score reaches
`std_threshold` standard deviations; `on_anomaly` is called once when it does (not again until it has
returned to normal, nor within `cooldown` buckets of its last report), the event is logged and, given a
MetricsCollector, counted.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from cascadeflow.errors import ConfigurationError
from cascadeflow.insights.agreement import AgreementScorer
from cascadeflow.insights.novelty import NoveltyScorer
from cascadeflow.insights.scorers import (
    NOVELTY_AT_THREE_SD,
    CooldownScorer,
    RobustScorer,
    StreamScorer,
    ZScoreScorer,
)
from cascadeflow.metrics.labels import BoundedValues
from cascadeflow.trace.events import is_event

log = logging.getLogger(__name__)
SIGNALS = ("cost_rate", "call_rate", "cost_per_call", "verifier_share", "latency")
MAX_IDLE_BUCKETS = 1000  # empty buckets fed as zero calls after a gap; a longer gap is not replayed
Method = Literal["agreement", "robust", "novelty", "zscore"]
METHODS = ("agreement", "robust", "novelty", "zscore")


@dataclass(frozen=True, slots=True, kw_only=True)
class Anomaly:
    """One signal of one key leaving its usual range, at the end of bucket `at` (ISO-8601 UTC)."""

    signal: str
    key: str
    value: float
    score: float  # standard deviations from usual
    at: str
    method: str


@dataclass(slots=True)
class _Bucket:
    index: int
    cost: float = 0.0
    calls: int = 0
    drafts: int = 0
    escalated: int = 0
    latency_ms: float = 0.0

    def signals(self) -> dict[str, float]:
        out = {"cost_rate": self.cost, "call_rate": float(self.calls)}
        if self.drafts:
            out["verifier_share"] = self.escalated / self.drafts
        if self.calls:  # per-call figures do not follow the traffic's daily cycle, so shifts stand out
            out["cost_per_call"] = self.cost / self.calls
            out["latency"] = self.latency_ms / self.calls
        return out


@dataclass(slots=True)
class _Stream:
    scorer: StreamScorer
    anomalous: bool = False


@dataclass(slots=True)
class _KeyState:
    bucket: _Bucket | None = None
    streams: dict[str, _Stream] = field(default_factory=dict)


class _ScaledNovelty:
    """NoveltyScorer on the standard-deviation scale of the other methods (NOVELTY_AT_THREE_SD is 3.0)."""

    def __init__(self) -> None:
        self.novelty = NoveltyScorer()

    def score(self, value: float) -> float:
        return self.novelty.score(value) * 3.0 / NOVELTY_AT_THREE_SD


def scorer_for(method: str, window_size: int) -> StreamScorer:
    if method == "agreement":
        return AgreementScorer(window=window_size)
    if method == "robust":
        return RobustScorer(window=window_size)
    if method == "novelty":
        return _ScaledNovelty()
    return ZScoreScorer(window=window_size)


def alerting_scorer(method: str = "agreement", *, window_size: int = 400, std_threshold: float = 3.0,
                    cooldown: int = 100) -> StreamScorer:
    """One signal's scorer as AnomalyDetector uses it: the method's score, 0 during a cool-down."""
    return CooldownScorer(scorer_for(method, window_size), threshold=std_threshold, cooldown=cooldown)


class AnomalyDetector:
    """Watch the audit records for unusual cost, traffic, escalation or latency.

    `key` groups the records: None (all together), "user_id", "agent_id" or a metadata key. `window_size`
    is the number of past buckets a value is compared with; `std_threshold` how many standard deviations
    from usual counts as anomalous; `cooldown` how many buckets a signal stays quiet after a report.
    `on_anomaly` takes the Anomaly or no argument.
    """

    def __init__(self, *, window_size: int = 400, std_threshold: float = 3.0,
                 on_anomaly: Callable[..., Any] | None = None, method: Method = "agreement",
                 cooldown: int = 100, bucket_seconds: float = 60.0, key: str | None = None, metrics_collector: Any = None,
                 max_keys: int = 1000):
        if not isinstance(window_size, int) or window_size < 10:
            raise ConfigurationError(f"window_size must be an int of at least 10 buckets, got {window_size!r}")
        if not isinstance(std_threshold, (int, float)) or std_threshold <= 0:
            raise ConfigurationError(f"std_threshold must be a positive number, got {std_threshold!r}")
        if method not in METHODS:
            raise ConfigurationError(f"method must be one of {', '.join(map(repr, METHODS))}, got {method!r}")
        if not isinstance(cooldown, int) or cooldown < 0:
            raise ConfigurationError(f"cooldown must be a number of buckets (an int, 0 or more), got {cooldown!r}")
        if not isinstance(bucket_seconds, (int, float)) or bucket_seconds <= 0:
            raise ConfigurationError(f"bucket_seconds must be positive, got {bucket_seconds!r}")
        if on_anomaly is not None and not callable(on_anomaly):
            raise ConfigurationError("on_anomaly must be callable: fn(anomaly) or fn()")
        self.window_size = window_size
        self.std_threshold = float(std_threshold)
        self.method = method
        self.cooldown = cooldown
        self.bucket_seconds = float(bucket_seconds)
        self.key = key
        self.metrics_collector = metrics_collector
        self.on_anomaly = on_anomaly
        self._pass_anomaly = on_anomaly is not None and takes_argument(on_anomaly)
        self._keys = BoundedValues(max_keys)
        self._state: dict[str, _KeyState] = {}
        self._lock = threading.Lock()
        self.anomalies: list[Anomaly] = []

    def __repr__(self) -> str:
        return f"AnomalyDetector(method={self.method!r}, std_threshold={self.std_threshold}, key={self.key!r})"

    @property
    def keys(self) -> list[str]:
        """The keys watched so far."""
        return sorted(self._state)

    def write(self, record: Any, *, quality: float | None = None, baseline_cost: float | None = None) -> None:
        """Add one audit record (an audit sink and a CascadeAgent observer both call this)."""
        if is_event(record):  # an anomaly event's record is not a call
            return
        moment = _epoch(record.timestamp)
        key = self._keys(self._key_of(record))
        with self._lock:
            bucket = self._bucket(key, moment)
            bucket.calls += 1
            bucket.cost += max(float(record.cost_usd or 0.0), 0.0)
            bucket.latency_ms += max(float(record.latency_ms or 0.0), 0.0)
            if record.action in ("accept", "escalate"):
                bucket.drafts += 1
                bucket.escalated += record.action == "escalate"

    def observe(self, signal: str, value: float, *, key: str = "all", at: str = "") -> Anomaly | None:
        """Score one value of one signal directly (for series that do not come from audit records)."""
        with self._lock:
            state = self._state.setdefault(key, _KeyState())
            return self._score(state, key, signal, float(value), at)

    def flush(self) -> None:
        """Close every open bucket now (e.g. at shutdown, or in tests)."""
        with self._lock:
            for key, state in self._state.items():
                if state.bucket is not None:
                    self._close(key, state, state.bucket)
                    state.bucket = None

    def _key_of(self, record: Any) -> Any:
        if self.key is None:
            return "all"
        if self.key in ("user_id", "agent_id", "run_id"):
            return getattr(record, self.key)
        return (record.metadata or {}).get(self.key)

    def _bucket(self, key: str, moment: float) -> _Bucket:
        index = int(moment // self.bucket_seconds)
        state = self._state.setdefault(key, _KeyState())
        current = state.bucket
        if current is None:
            state.bucket = _Bucket(index)
            return state.bucket
        if index <= current.index:  # late records join the open bucket rather than rewrite a closed one
            return current
        self._close(key, state, current)
        for idle in range(max(current.index + 1, index - MAX_IDLE_BUCKETS), index):
            self._close(key, state, _Bucket(idle))
        state.bucket = _Bucket(index)
        return state.bucket

    def _close(self, key: str, state: _KeyState, bucket: _Bucket) -> None:
        at = datetime.fromtimestamp((bucket.index + 1) * self.bucket_seconds, UTC).isoformat()
        for signal, value in bucket.signals().items():
            self._score(state, key, signal, value, at)

    def _score(self, state: _KeyState, key: str, signal: str, value: float, at: str) -> Anomaly | None:
        stream = state.streams.get(signal)
        if stream is None:
            stream = state.streams[signal] = _Stream(alerting_scorer(
                self.method, window_size=self.window_size, std_threshold=self.std_threshold, cooldown=self.cooldown))
        score = stream.scorer.score(value)
        if score < self.std_threshold:
            stream.anomalous = False
            return None
        if stream.anomalous:  # still the same episode: reported when it began
            return None
        stream.anomalous = True
        anomaly = Anomaly(signal=signal, key=key, value=value, score=score, at=at, method=self.method)
        self._report(anomaly)
        return anomaly

    def _report(self, anomaly: Anomaly) -> None:
        self.anomalies.append(anomaly)
        log.warning("anomaly: %s of %s is %.6g at %s (score %.4f, %s)", anomaly.signal, anomaly.key, anomaly.value,
                    anomaly.at, anomaly.score, anomaly.method)
        if self.metrics_collector is not None:
            self.metrics_collector.count_anomaly(anomaly.signal, anomaly.key)
        if self.on_anomaly is not None:
            try:
                self.on_anomaly(anomaly) if self._pass_anomaly else self.on_anomaly()
            except Exception:
                log.exception("on_anomaly callback failed for %s", anomaly)


def takes_argument(fn: Callable[..., Any]) -> bool:
    """Whether a callback takes the event (`fn(event)`) or nothing (`fn()`, as in `lambda: page_team()`)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params)


def _epoch(timestamp: str) -> float:
    try:
        moment = datetime.fromisoformat(str(timestamp))
    except ValueError:
        raise ConfigurationError(f"audit record timestamp {timestamp!r} is not ISO-8601") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
