"""Typed records: one DecisionRecord per decision (the run trace) and one AuditRecord per call (the audit log).

Records are plain dataclasses; `to_dict()` gives the JSON shape written by every sink.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Action = Literal["allow", "switch_model", "deny_tool", "stop", "redact", "escalate", "accept", "queue", "anomaly"]


@dataclass(slots=True)
class DecisionRecord:
    step: int
    timestamp: str  # ISO-8601 UTC
    action: str
    reason: str
    model_requested: str | None
    model_used: str | None
    applied: bool
    cost: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: float = 0.0
    budget_remaining: float | None = None
    run_id: str | None = None
    request_id: str | None = None
    tier: int | None = None
    details: dict[str, Any] = field(default_factory=dict)  # signals, KPI scores, policy names

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __getitem__(self, key: str) -> Any:  # users index trace records like dicts: r["action"]
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)


@dataclass(slots=True, kw_only=True)
class AuditRecord:
    timestamp: str
    request_id: str
    run_id: str | None
    user_id: str | None
    mode: str
    action: str
    model_requested: str | None
    model_selected: str | None
    routing_reason: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_ms: float
    budget_remaining: float | None
    price_version: str
    metadata: dict[str, Any] = field(default_factory=dict)  # caller metadata, e.g. alert_id, severity
    tiers: list[dict[str, Any]] = field(default_factory=list)  # one entry per attempt
    agent_id: str | None = None
    error: str | None = None
    prompt: Any = None  # only when recording content is opted in
    answer: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        # caller metadata (an alert_id) is also at the top level of the entry, where filters look for it
        for key, value in self.metadata.items():
            out.setdefault(key, value)
        if self.prompt is None:
            out.pop("prompt")
        if self.answer is None:
            out.pop("answer")
        return out
