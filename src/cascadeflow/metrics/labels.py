"""How an audit record becomes metric labels: which fields, which values, and the bound on their number."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cascadeflow.errors import ConfigurationError

NONE = "none"  # label value for a field the record does not carry (Prometheus labels cannot be absent)
OTHER = "other"  # label value once a configured label has seen `max_values` distinct values
CALL_LABELS = ("model", "provider", "tier", "action", "cache", "task_type")
ATTEMPT_LABELS = ("model", "provider", "tier", "role", "status", "action", "cache", "task_type")


def split_model(model_id: str | None) -> tuple[str, str]:
    """`openai/gpt-4o-mini` -> (`gpt-4o-mini`, `openai`); a bare id has provider `none`."""
    if not model_id:
        return NONE, NONE
    provider, sep, bare = model_id.partition("/")
    return (bare, provider) if sep else (model_id, NONE)


def cache_info(record: Any) -> Any:
    """What the cache step wrote on the record: metadata["cache"] ({"hit": ..., "kind": ..., "saved_usd": ...})."""
    return (getattr(record, "metadata", None) or {}).get("cache")


def cache_status(record: Any) -> str:
    """`exact_hit`, `semantic_hit`, `observed_hit` (observe mode: a hit not served), `miss`, or `none` when
    no cache looked at the call."""
    info = cache_info(record)
    if isinstance(info, Mapping):
        if info.get("hit"):
            return f"{info.get('kind') or 'exact'}_hit"
        return "observed_hit" if info.get("would_hit") else "miss"
    return NONE if info is None or info == "" else str(info)


def answering_attempt(record: Any) -> Mapping[str, Any] | None:
    """The attempt whose answer was returned: the last one that answered (None when none did)."""
    for tier in reversed(record.tiers or ()):
        if tier.get("status") == "ok":
            return tier
    return None


@dataclass(frozen=True, slots=True)
class LabelConfig:
    """Which optional, caller-specific labels to add and how many distinct values each may take.

    `user=True` adds a `user` label (the record's user_id); `feature="feature"` adds a `feature` label read
    from that metadata key. Each keeps its first `max_values` distinct values and folds the rest into
    `other`, so a scrape stays small however many users call.
    """

    user: bool = False
    feature: str | None = None
    max_values: int = 100

    def __post_init__(self) -> None:
        if self.max_values < 1:
            raise ConfigurationError(f"LabelConfig.max_values must be at least 1, got {self.max_values}")
        if self.feature is not None and not self.feature.strip():
            raise ConfigurationError("LabelConfig.feature must name a metadata key, e.g. feature='feature'")

    @property
    def extra(self) -> tuple[str, ...]:
        return (("user",) if self.user else ()) + (("feature",) if self.feature else ())


class BoundedValues:
    """The first `limit` distinct values of one label pass through; later new values become `other`."""

    def __init__(self, limit: int):
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: Any) -> str:
        text = NONE if value is None or value == "" else str(value)
        if text in self._seen:
            return text
        with self._lock:
            if len(self._seen) < self.limit:
                self._seen.add(text)
                return text
        return OTHER


class RecordLabels:
    """Label values for one record: the call's labels and one set per attempt."""

    def __init__(self, config: LabelConfig):
        self.config = config
        self._users = BoundedValues(config.max_values)
        self._features = BoundedValues(config.max_values)
        self._tasks = BoundedValues(config.max_values)  # task types come from caller metadata too

    def extra(self, record: Any) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.config.user:
            out["user"] = self._users(record.user_id)
        if self.config.feature:
            out["feature"] = self._features((record.metadata or {}).get(self.config.feature))
        return out

    def call(self, record: Any) -> dict[str, str]:
        answered = answering_attempt(record)
        model_id = record.model_selected or record.model_requested
        tier = NONE
        if answered is not None:
            model_id = answered.get("model") or model_id
            tier = str(answered.get("tier", NONE))
        model, provider = split_model(model_id)
        labels = {"model": model, "provider": provider, "tier": tier, "action": record.action or NONE,
                  "cache": cache_status(record), "task_type": self._tasks(task_type(record))}
        labels.update(self.extra(record))
        return labels

    def attempt(self, record: Any, tier: Mapping[str, Any], call_labels: Mapping[str, str]) -> dict[str, str]:
        model, provider = split_model(tier.get("model"))
        labels = dict(call_labels)
        labels.update(model=model, provider=provider, tier=str(tier.get("tier", NONE)),
                      role=str(tier.get("role") or NONE), status=str(tier.get("status") or NONE))
        return labels


def task_type(record: Any) -> str | None:
    """The task type the caller put in metadata (a TaskType or its string value), if any."""
    value = (record.metadata or {}).get("task_type")
    return None if value is None else str(getattr(value, "value", value))
