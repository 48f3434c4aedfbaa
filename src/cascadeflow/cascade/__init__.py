"""The cascade engine: `CascadeAgent`, its results, events and analytics (validation lives in `quality`)."""

from cascadeflow.cascade.agent import CascadeAgent
from cascadeflow.cascade.analytics import AnalyticsSnapshot, Breakdown
from cascadeflow.cascade.evaluation import EvaluationMetrics, TestQuery
from cascadeflow.cascade.events import CascadeEvent, format_event
from cascadeflow.cascade.result import CascadeResult, TierAttempt

__all__ = [
    "AnalyticsSnapshot",
    "Breakdown",
    "CascadeAgent",
    "CascadeEvent",
    "CascadeResult",
    "EvaluationMetrics",
    "TestQuery",
    "TierAttempt",
    "format_event",
]
