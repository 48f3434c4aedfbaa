"""cascadeflow: the runtime layer between an agent and LLM APIs.

It decides, for every call, which model answers, whether a cheap model's answer is good enough, what the
call may cost, what policy allows, and what gets recorded.
"""

from cascadeflow.errors import (
    AuthenticationError,
    BadRequestError,
    BudgetBackendUnavailable,
    BudgetExceeded,
    CascadeExhausted,
    CascadeflowError,
    CircuitOpenError,
    ConfigurationError,
    ContentFilteredError,
    ContextWindowExceededError,
    InvalidRequestError,
    MalformedResponseError,
    MissingAPIKeyError,
    PolicyViolation,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
    UnknownModelPriceError,
    UnknownProviderError,
)
from cascadeflow.messages import Message, Request, Response, ToolCall, ToolSpec, Usage
from cascadeflow.models import ModelConfig
from cascadeflow.pricing import PriceBook

__version__ = "0.1.0"

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "BudgetBackendUnavailable",
    "BudgetExceeded",
    "CascadeExhausted",
    "CascadeflowError",
    "CircuitOpenError",
    "ConfigurationError",
    "ContentFilteredError",
    "ContextWindowExceededError",
    "InvalidRequestError",
    "MalformedResponseError",
    "Message",
    "MissingAPIKeyError",
    "ModelConfig",
    "PolicyViolation",
    "PriceBook",
    "ProviderError",
    "ProviderTimeoutError",
    "RateLimitError",
    "Request",
    "Response",
    "ServerError",
    "ToolCall",
    "ToolSpec",
    "UnknownModelPriceError",
    "UnknownProviderError",
    "Usage",
    "__version__",
]
