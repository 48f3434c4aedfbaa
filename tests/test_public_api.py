"""The public API: one sorted list, every name importable, no extra loaded by `import cascadeflow`."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import cascadeflow

ROOT = Path(__file__).resolve().parents[1]

PINNED = [
    "AlertConfig", "AnomalyDetector", "AnthropicMessages", "AuditUnavailable",
    "BudgetBackendUnavailable", "BudgetConfig", "BudgetExceeded", "BudgetExceededError", "BudgetSession",
    "CacheConfig", "Calibration", "CascadeAgent", "CascadeExhausted", "CascadeFlow", "CascadeResult",
    "CascadeflowError",
    "CompletionResult", "ConfigurationError", "CostForecaster", "DeferredQueue", "DomainConfig", "InvalidRequestError",
    "Message", "MetricsCollector", "MissingAPIKeyError", "MissingExtraError", "ModelConfig", "ModelRouter", "OpenAIChat", "PolicyViolation",
    "PriceBook", "ProviderError", "QualityConfig", "RateLimitError", "Request", "Response", "Route", "Rule",
    "RuleRouter", "Runtime", "SeverityRouter", "TaskType", "ToolCall", "ToolSpec", "UnknownModelPriceError",
    "UnknownProviderError", "Usage", "UserBudget", "__version__", "agent", "init", "open_ledger", "reset",
    "run",
]


def test_all_is_sorted_and_pinned() -> None:
    assert cascadeflow.__all__ == sorted(cascadeflow.__all__)
    assert cascadeflow.__all__ == PINNED  # adding a public name is a decision: update this list with it


def test_every_public_name_resolves() -> None:
    for name in cascadeflow.__all__:
        assert getattr(cascadeflow, name) is not None, name


def test_import_loads_no_optional_or_heavy_dependency() -> None:
    code = ("import sys, cascadeflow; heavy = ['httpx', 'numpy', 'llama_cpp', 'redis', 'psycopg', 'openai', "
            "'anthropic', 'opentelemetry', 'matplotlib', 'sklearn', 'jsonschema']; "
            "print(','.join(m for m in heavy if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_app_uses_only_the_public_api() -> None:
    """apps/ may import `cascadeflow` and its public subpackages, never a private `cascadeflow._x` module."""
    offenders = []
    for path in (ROOT / "apps").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            offenders += [f"{path.name}: {n}" for n in names
                          if n.split(".")[0] == "cascadeflow" and any(p.startswith("_") for p in n.split(".")[1:])]
    assert offenders == []
