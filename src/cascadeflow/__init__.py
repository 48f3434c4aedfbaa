"""cascadeflow: the runtime layer between an agent and LLM APIs.

It decides, for every call, which model answers, whether a cheap model's answer is good enough, what the
call may cost, what policy allows, and what gets recorded. Names below are re-exported from the modules
that own them; the heavier ones load on first use so `import cascadeflow` stays fast.
"""

from typing import TYPE_CHECKING, Any

from cascadeflow.errors import (
    AuditUnavailable,
    BudgetBackendUnavailable,
    BudgetExceeded,
    BudgetExceededError,
    CascadeExhausted,
    CascadeflowError,
    ConfigurationError,
    InvalidRequestError,
    MissingAPIKeyError,
    MissingExtraError,
    PolicyViolation,
    ProviderError,
    RateLimitError,
    UnknownModelPriceError,
    UnknownProviderError,
)
from cascadeflow.lazy import lazy_attribute
from cascadeflow.messages import Message, Request, Response, ToolCall, ToolSpec, Usage
from cascadeflow.models import ModelConfig

__version__ = "0.1.0"

# name -> module that owns it (imported on first attribute access)
_LAZY = {
    "AlertConfig": "cascadeflow.insights.alerts",
    "AnomalyDetector": "cascadeflow.insights.anomaly",
    "AnthropicMessages": "cascadeflow.providers.anthropic",
    "BudgetConfig": "cascadeflow.budget.config",
    "BudgetSession": "cascadeflow.flow.session",
    "CacheConfig": "cascadeflow.cache.config",
    "Calibration": "cascadeflow.cascade.calibration",
    "CascadeAgent": "cascadeflow.cascade.agent",
    "CascadeFlow": "cascadeflow.flow.client",
    "CascadeResult": "cascadeflow.cascade.result",
    "CompletionResult": "cascadeflow.flow.client",
    "CostForecaster": "cascadeflow.insights.forecast",
    "DeferredQueue": "cascadeflow.budget.queue",
    "DomainConfig": "cascadeflow.routing.domains",
    "MetricsCollector": "cascadeflow.metrics.prometheus",
    "ModelRouter": "cascadeflow.routing.tasks",
    "OpenAIChat": "cascadeflow.providers.openai_chat",
    "PriceBook": "cascadeflow.pricing",
    "QualityConfig": "cascadeflow.cascade.quality",
    "Route": "cascadeflow.routing.route",
    "Rule": "cascadeflow.routing.rules",
    "RuleRouter": "cascadeflow.routing.rules",
    "Runtime": "cascadeflow.runtime.pipeline",
    "SeverityRouter": "cascadeflow.routing.rules",
    "TaskType": "cascadeflow.routing.tasks",
    "UserBudget": "cascadeflow.budget.config",
    "agent": "cascadeflow.harness.scope",
    "init": "cascadeflow.harness.state",
    "open_ledger": "cascadeflow.budget.backends",
    "reset": "cascadeflow.harness.state",
    "run": "cascadeflow.harness.scope",
}

__all__ = [
    "AlertConfig",
    "AnomalyDetector",
    "AnthropicMessages",
    "AuditUnavailable",
    "BudgetBackendUnavailable",
    "BudgetConfig",
    "BudgetExceeded",
    "BudgetExceededError",
    "BudgetSession",
    "CacheConfig",
    "Calibration",
    "CascadeAgent",
    "CascadeExhausted",
    "CascadeFlow",
    "CascadeResult",
    "CascadeflowError",
    "CompletionResult",
    "ConfigurationError",
    "CostForecaster",
    "DeferredQueue",
    "DomainConfig",
    "InvalidRequestError",
    "Message",
    "MetricsCollector",
    "MissingAPIKeyError",
    "MissingExtraError",
    "ModelConfig",
    "ModelRouter",
    "OpenAIChat",
    "PolicyViolation",
    "PriceBook",
    "ProviderError",
    "QualityConfig",
    "RateLimitError",
    "Request",
    "Response",
    "Route",
    "Rule",
    "RuleRouter",
    "Runtime",
    "SeverityRouter",
    "TaskType",
    "ToolCall",
    "ToolSpec",
    "UnknownModelPriceError",
    "UnknownProviderError",
    "Usage",
    "UserBudget",
    "__version__",
    "agent",
    "init",
    "open_ledger",
    "reset",
    "run",
]


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, _LAZY, name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # let type checkers and IDEs see the lazy names
    from cascadeflow.budget.backends import open_ledger
    from cascadeflow.budget.config import BudgetConfig, UserBudget
    from cascadeflow.budget.queue import DeferredQueue
    from cascadeflow.cache.config import CacheConfig
    from cascadeflow.cascade.agent import CascadeAgent
    from cascadeflow.cascade.calibration import Calibration
    from cascadeflow.cascade.quality import QualityConfig
    from cascadeflow.cascade.result import CascadeResult
    from cascadeflow.flow.client import CascadeFlow, CompletionResult
    from cascadeflow.flow.session import BudgetSession
    from cascadeflow.harness.scope import agent, run
    from cascadeflow.harness.state import init, reset
    from cascadeflow.insights.alerts import AlertConfig
    from cascadeflow.insights.anomaly import AnomalyDetector
    from cascadeflow.insights.forecast import CostForecaster
    from cascadeflow.metrics.prometheus import MetricsCollector
    from cascadeflow.pricing import PriceBook
    from cascadeflow.providers.anthropic import AnthropicMessages
    from cascadeflow.providers.openai_chat import OpenAIChat
    from cascadeflow.routing.domains import DomainConfig
    from cascadeflow.routing.route import Route
    from cascadeflow.routing.rules import Rule, RuleRouter, SeverityRouter
    from cascadeflow.routing.tasks import ModelRouter, TaskType
    from cascadeflow.runtime.pipeline import Runtime
