"""Audit records for the metrics tests, and the worker the multiprocess test runs in a child process."""

from __future__ import annotations

import sys
from typing import Any

from cascadeflow.trace.records import AuditRecord


def attempt(tier: int, model: str, *, role: str = "single", cost: float = 0.001, status: str = "ok",
            input_tokens: int = 100, output_tokens: int = 40, latency_ms: float = 200.0) -> dict[str, Any]:
    return {"tier": tier, "role": role, "model": model, "max_tokens": 512, "cost_usd": cost,
            "input_tokens": input_tokens, "output_tokens": output_tokens, "latency_ms": latency_ms,
            "status": status, "error": None if status == "ok" else "ServerError: 503", "finish_reason": "stop",
            "shrunk_from": None}


def record(request_id: str = "r1", *, action: str = "allow", tiers: list[dict[str, Any]] | None = None,
           **overrides: Any) -> AuditRecord:
    tiers = tiers if tiers is not None else [attempt(0, "openai/gpt-4o-mini")]
    values: dict[str, Any] = {
        "timestamp": "2026-06-15T03:42:11+00:00", "request_id": request_id, "run_id": None, "user_id": "alice",
        "mode": "enforce", "action": action, "model_requested": tiers[0]["model"] if tiers else None,
        "model_selected": next((t["model"] for t in reversed(tiers) if t["status"] == "ok"), None),
        "routing_reason": "cascade", "input_tokens": sum(t["input_tokens"] for t in tiers),
        "output_tokens": sum(t["output_tokens"] for t in tiers), "cost_usd": sum(t["cost_usd"] for t in tiers),
        "latency_ms": 1500.0, "budget_remaining": 4.5, "price_version": "test",
        "metadata": {"feature": "triage", "task_type": "summarize"}, "tiers": tiers,
    }
    values.update(overrides)
    return AuditRecord(**values)


def cascade(request_id: str, *, accepted: bool, **overrides: Any) -> AuditRecord:
    tiers = [attempt(0, "groq/llama-3.1-8b-instant", role="draft", cost=0.0001)]
    if not accepted:
        tiers.append(attempt(1, "openai/gpt-4o", role="verifier", cost=0.004))
    return record(request_id, action="accept" if accepted else "escalate", tiers=tiers, **overrides)


def worker(count: int) -> None:
    """A worker process: `count` cascades, the first half accepted (PROMETHEUS_MULTIPROC_DIR is inherited)."""
    from cascadeflow.metrics import MetricsCollector

    collector = MetricsCollector()
    for i in range(count):
        collector.write(cascade(f"w{i}", accepted=i < count // 2), quality=0.9, baseline_cost=0.004)


if __name__ == "__main__":
    worker(int(sys.argv[1]))
