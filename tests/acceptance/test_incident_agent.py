"""The incident-response agent: severity routing with a per-call cap, a daily budget session that queues the
alerts it cannot afford, and the audit record every call writes, made as its code makes them.

Features covered (all working):
- installing: the `cascadeflow` distribution imports with its version
- `CascadeFlow()` with no arguments; `cf.complete(model=, messages=, budget_limit=)` -> `.content`
- Groq models by 'groq/<model>' id, priced from the price book
- `budget_limit` as a hard per-call cap (the worst case is checked before sending)
- `BudgetSession(cf, limit=)` as a context manager; `session.complete(model=, messages=)`
- `BudgetExceeded` raised before the call once the session cannot afford it; the loop queues the rest
- every call audited by default, without `init()`: timestamp, model_selected, routing_reason, tokens,
  cost_usd, latency_ms, budget_remaining, caller metadata such as alert_id
"""

from __future__ import annotations

from importlib.metadata import version

import pytest

import cascadeflow
from cascadeflow import BudgetExceeded, BudgetSession, CascadeFlow

SYSTEM_PROMPT = "You are an SRE incident-response assistant. Name the likely cause and the first check."

ROUTING_MAP = {
    "P0": "groq/llama3-70b-8192",
    "P1": "groq/llama3-70b-8192",
    "P2": "groq/llama3-8b-8192",
    "P3": "groq/llama3-8b-8192",
    "INFO": "groq/gemma2-9b-it",
}

ALERTS = [
    {"id": "INC-040", "severity": "P0", "message": "orders-db primary unreachable"},
    {"id": "INC-041", "severity": "P3", "message": "search index 2h stale"},
    {"id": "INC-042", "severity": "INFO", "message": "disk /var at 61%"},
    {"id": "INC-043", "severity": "P2", "message": "p99 latency 900ms on checkout"},
]


def build_prompt(alert: dict, memory_context: str) -> str:
    return f"[{alert['severity']}] {alert['message']}\nSimilar past incidents: {memory_context}"


def build_messages(alert: dict) -> list[dict]:
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": build_prompt(alert, "none")}]


def test_the_one_line_install_is_the_cascadeflow_distribution():
    assert version("cascadeflow") == cascadeflow.__version__


def test_route_incident_sends_each_severity_to_its_model_under_the_per_call_cap(answers):
    openai_server, _ = answers
    cf = CascadeFlow()

    def route_incident(alert: dict, memory_context: str) -> str:
        model = ROUTING_MAP.get(alert["severity"], "groq/llama3-8b-8192")

        response = cf.complete(
            model=model,
            messages=[
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": build_prompt(alert, memory_context)}
            ],
            budget_limit=0.05  # Hard cap per call in USD
        )
        return response.content

    answers_given = [route_incident(alert, "INC-2024-001: WAL growth") for alert in ALERTS]
    assert all(a == openai_server.default.text for a in answers_given)
    sent = [r.json["model"] for r in openai_server.requests]
    assert sent == ["llama3-70b-8192", "llama3-8b-8192", "gemma2-9b-it", "llama3-8b-8192"]
    assert all(r.headers["authorization"] == "Bearer sk-groq-loopback" for r in openai_server.requests)


def test_a_call_whose_worst_case_exceeds_budget_limit_is_refused_before_sending(openai_server):
    cf = CascadeFlow()
    with pytest.raises(BudgetExceeded, match="budget_limit"):
        cf.complete(model="groq/llama3-70b-8192", messages="summarise: " + "log line " * 200_000,
                    budget_limit=0.05)
    assert openai_server.requests == []


def test_the_daily_budget_session_queues_what_it_cannot_afford(answers, capsys):
    openai_server, _ = answers
    cf = CascadeFlow()
    queued: list[dict] = []

    def queue_for_later(alert: dict) -> None:
        queued.append(alert)

    def run_with_daily_budget(alerts: list, daily_limit: float = 5.00):
        with BudgetSession(cf, limit=daily_limit) as session:
            for alert in alerts:
                try:
                    response = session.complete(
                        model=ROUTING_MAP.get(alert["severity"]),
                        messages=build_messages(alert)
                    )
                    print(f"✅ {alert['id']}: {response.content[:100]}")
                except BudgetExceeded:
                    print(f"⚠️ Daily budget hit. Queuing {alert['id']} for next cycle.")
                    queue_for_later(alert)
            return session

    # a day too small for twelve alerts: the ones it cannot afford are queued, none is sent unpaid
    session = run_with_daily_budget(ALERTS * 3, daily_limit=0.001)
    out = capsys.readouterr().out
    answered = [line.split(":")[0].removeprefix("✅ ") for line in out.splitlines() if line.startswith("✅")]
    assert answered and queued, out
    assert len(answered) + len(queued) == len(ALERTS) * 3 == len(openai_server.requests) + len(queued)
    assert out.count("Daily budget hit") == len(queued)
    assert 0 < session.spent <= 0.001


def test_every_complete_call_writes_the_audit_record_without_init(answers, audit_log):
    cf = CascadeFlow()
    result = cf.complete(model="groq/llama3-70b-8192", messages=build_messages(ALERTS[0]), budget_limit=0.05,
                         metadata={"alert_id": "INC-042"}, routing_reason="severity=P0")
    [record] = audit_log()
    for field in ("timestamp", "model_selected", "routing_reason", "input_tokens", "output_tokens", "cost_usd",
                  "latency_ms", "budget_remaining"):
        assert field in record, field
    assert record["alert_id"] == "INC-042" and record["model_selected"] == "groq/llama3-70b-8192"
    assert record["routing_reason"] == "severity=P0"
    assert (record["input_tokens"], record["output_tokens"]) == (120, 40)
    assert record["cost_usd"] == pytest.approx(result.cost) and result.cost > 0
    assert 0 < record["budget_remaining"] < 0.05
