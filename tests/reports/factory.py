"""Audit records of a small fleet (cascaded calls, escalations, cache hits, stops, an anomaly event) and the
figures a report must give for them, computed here independently of the report's SQL."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from cascadeflow.messages import Usage
from cascadeflow.pricing import PriceBook
from cascadeflow.trace.records import AuditRecord

DRAFTER, VERIFIER = "openai/gpt-4o-mini", "openai/gpt-4o"


def tier(index: int, model: str, cost: float, tokens_in: int = 400, tokens_out: int = 120) -> dict[str, Any]:
    return {"tier": index, "role": "draft" if index == 0 else "verify", "model": model, "max_tokens": 512,
            "cost_usd": cost, "input_tokens": tokens_in, "output_tokens": tokens_out, "latency_ms": 80.0,
            "status": "ok", "error": None, "finish_reason": "stop", "shrunk_from": None}


def call(i: int, *, day: str, user: str, feature: str, task: str, action: str, cache: dict | None = None,
         prompt: Any = None) -> AuditRecord:
    book = PriceBook()
    draft_cost = float(book.cost(DRAFTER, Usage(400, 120)))
    verify_cost = float(book.cost(VERIFIER, Usage(400, 120)))
    tiers = {"accept": [tier(0, DRAFTER, draft_cost)],
             "escalate": [tier(0, DRAFTER, draft_cost), tier(1, VERIFIER, verify_cost)],
             "stop": [tier(0, DRAFTER, draft_cost)],
             "allow": []}[action]
    metadata: dict[str, Any] = {"feature": feature, "task_type": task}
    if cache is not None:
        metadata["cache"] = cache
    return AuditRecord(
        timestamp=f"{day}T{i % 24:02d}:00:00.000Z", request_id=f"r{i}", run_id=None, user_id=user,
        mode="enforce", action=action, model_requested=DRAFTER,
        model_selected=None if action == "stop" else (tiers[-1]["model"] if tiers else DRAFTER),
        routing_reason="cascade of 2 tiers", input_tokens=sum(t["input_tokens"] for t in tiers),
        output_tokens=sum(t["output_tokens"] for t in tiers), cost_usd=sum(t["cost_usd"] for t in tiers),
        latency_ms=100.0, budget_remaining=None, price_version="test", metadata=metadata, tiers=tiers,
        error="CascadeExhausted: every tier failed" if action == "stop" else None, prompt=prompt)


def fleet() -> list[AuditRecord]:
    """60 records over three days, two users, two features; one cache hit."""
    records = []
    for i in range(60):
        action = "escalate" if i % 4 == 0 else ("stop" if i == 7 else "accept")
        records.append(call(i, day=f"2026-11-0{1 + i % 3}", user="alice" if i % 3 else "bob",
                            feature="chat" if i % 2 else "search", task="code" if i % 5 else "summary",
                            action=action))
    records.append(call(60, day="2026-11-02", user="alice", feature="chat", task="code", action="allow",
                        cache={"hit": True, "kind": "exact", "saved_usd": 0.002}))
    return records


def anomaly_record() -> AuditRecord:
    return AuditRecord(timestamp="2026-11-02T12:00:00.000Z", request_id="anomaly-1", run_id=None, user_id=None,
                       mode="enforce", action="anomaly", model_requested=None, model_selected=None,
                       routing_reason="cost_rate of all is 9 (score 7.5)", input_tokens=0, output_tokens=0,
                       cost_usd=0.0, latency_ms=0.0, budget_remaining=None, price_version="test",
                       metadata={"anomaly": {"signal": "cost_rate", "key": "all", "value": 9.0, "score": 7.5,
                                             "at": "2026-11-02T12:00:00+00:00", "method": "robust"}})


def model_of(record: AuditRecord) -> str:
    return record.model_selected or (record.tiers[-1]["model"] if record.tiers else record.model_requested)


def expected(records: list[AuditRecord], key) -> dict[str, dict[str, Any]]:
    """Calls, cost, cascaded, accepted and the final attempts' tokens per group, in plain Python."""
    out: dict[str, dict[str, Any]] = defaultdict(lambda: {"calls": 0, "cost": 0.0, "cascaded": 0, "accepted": 0,
                                                          "final_in": 0, "final_out": 0, "saved": 0.0})
    for r in records:
        if r.action == "anomaly":
            continue
        group = out[key(r)]
        group["calls"] += 1
        group["cost"] += r.cost_usd
        group["cascaded"] += r.action in ("accept", "escalate")
        group["accepted"] += r.action == "accept"
        if r.tiers:
            group["final_in"] += r.tiers[-1]["input_tokens"]
            group["final_out"] += r.tiers[-1]["output_tokens"]
        group["saved"] += (r.metadata.get("cache") or {}).get("saved_usd", 0.0)
    return dict(out)
