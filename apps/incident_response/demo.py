"""`make demo`: an alert storm, routed by severity, cascaded, budgeted, queued and audited.

With GROQ_API_KEY set it uses Groq's Llama and Gemma models at their published prices. Without a key it runs on
the embedded SmolLM2-135M model (llama.cpp, in-process), priced by a declared machine-time rate, so the
budget mechanics are real: every call reserves its worst case on a SQLite ledger, settles to its actual
cost, and alerts that no longer fit the session budget are queued durably and drained in later cycles.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # run as a script from the repository root

import cascadeflow
from apps.incident_response.report import console, print_audit_summary, print_cycle, print_header
from cascadeflow import (
    BudgetExceeded,
    BudgetSession,
    CascadeFlow,
    DeferredQueue,
    ModelConfig,
    QualityConfig,
    SeverityRouter,
)

SYSTEM_PROMPT = (
    "You are an SRE incident-response assistant. Given an alert, reply in two or three sentences: the most "
    "likely cause and the first thing the on-call engineer should check. Be specific to the alert."
)

# Declared machine-time price of the embedded model (a small cloud VM), so budgets have real numbers to
# hold; measured throughput here is ~50 tokens/s, we reserve as if it were 20.
LOCAL_PRICE_PER_HOUR = 0.40
LOCAL_EXTRA = {"min_tokens_per_second": 20, "min_prompt_tokens_per_second": 200, "seed": 7}


def offline_routes() -> tuple[dict, str]:
    draft = ModelConfig(name="smollm2-135m", provider="local", compute_cost_per_hour=LOCAL_PRICE_PER_HOUR,
                        extra=LOCAL_EXTRA)
    careful = ModelConfig(name="smollm2-135m-instruct", provider="local",
                          compute_cost_per_hour=LOCAL_PRICE_PER_HOUR, extra=LOCAL_EXTRA)
    routes = {"P0": [careful], "P1": [draft, careful], "P2": [draft, careful], "P3": [draft], "INFO": [draft]}
    return routes, "offline: the embedded SmolLM2-135M (llama.cpp) serves every tier"


def online_routes() -> tuple[dict, str]:
    small, large, tiny = "groq/llama-3.1-8b-instant", "groq/llama-3.3-70b-versatile", "groq/gemma2-9b-it"
    routes = {"P0": [large], "P1": [small, large], "P2": [small, large], "P3": [small], "INFO": [tiny]}
    return routes, "online: Groq models, priced by genai-prices"


def build_messages(alert: dict) -> list[dict]:
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"[{alert['severity']}] {alert['service']}: {alert['title']}. {alert['detail']}"},
    ]


async def answer(session: BudgetSession, alert: dict, max_tokens: int) -> dict:
    started = time.perf_counter()
    try:
        result = await session.acomplete(
            messages=build_messages(alert), max_tokens=max_tokens, budget_limit=0.05,
            metadata={"alert_id": alert["id"], "severity": alert["severity"], "service": alert["service"]},
        )
    except BudgetExceeded as exc:
        return {"alert": alert, "queued": True, "reason": str(exc), "latency_s": time.perf_counter() - started}
    return {"alert": alert, "queued": False, "result": result}


async def run_cycle(cf: CascadeFlow, alerts: list[dict], limit: float, queue: DeferredQueue,
                    concurrency: int, max_tokens: int) -> tuple[list[dict], BudgetSession]:
    """Answer a storm of alerts under one session budget; what does not fit is queued for the next cycle."""
    gate = asyncio.Semaphore(concurrency)
    session = BudgetSession(cf, limit=limit)

    async def one(alert: dict) -> dict:
        async with gate:
            row = await answer(session, alert, max_tokens)
        if row["queued"]:
            queue.enqueue(alert, reason="session budget exhausted")
        return row

    with session:
        rows = await asyncio.gather(*(one(a) for a in alerts))
    return list(rows), session


async def drain_cycle(cf: CascadeFlow, queue: DeferredQueue, limit: float,
                      max_tokens: int) -> tuple[list[dict], BudgetSession]:
    """The next cycle: a fresh session budget drains the queue. An alert leaves the queue only once it was
    answered (at-least-once); one that still does not fit stays queued for the cycle after."""
    rows: list[dict] = []
    session = BudgetSession(cf, limit=limit)

    async def handle(item) -> None:
        row = await answer(session, item.payload, max_tokens)
        rows.append(row)
        if row["queued"]:
            raise BudgetExceeded("still over budget; kept in the queue")

    with session:
        await queue.adrain(handle)
    return rows, session


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=24, help="how many alerts in the storm (max 24)")
    parser.add_argument("--budget", type=float, default=None, help="session budget per cycle, USD")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--max-cycles", type=int, default=4, help="budget cycles before giving up on the queue")
    parser.add_argument("--out", default="demo-output", help="folder for the audit log, ledger and queue")
    args = parser.parse_args(argv)

    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    online = bool(os.environ.get("GROQ_API_KEY"))
    routes, label = online_routes() if online else offline_routes()
    budget = args.budget if args.budget is not None else (0.02 if online else 0.005)
    audit_path = out / "audit.jsonl"

    cascadeflow.init(mode="enforce", audit=str(audit_path), ledger_url=f"sqlite:///{out / 'budget.sqlite'}")
    cf = CascadeFlow(router=SeverityRouter(routes, default=routes["P3"]),
                     quality_config=QualityConfig.preset("balanced"))
    queue = DeferredQueue(out / "queue.sqlite")
    alerts = json.loads((HERE / "data" / "alerts.json").read_text())[: args.alerts]
    print_header(label, len(alerts), budget, audit_path)

    rows, session = await run_cycle(cf, alerts, budget, queue, args.concurrency, args.max_tokens)
    print_cycle(1, rows, session)

    cycle = 1
    while len(queue) and cycle < args.max_cycles:  # each later cycle gets a fresh budget and drains the queue
        cycle += 1
        rows, session = await drain_cycle(cf, queue, budget, args.max_tokens)
        print_cycle(cycle, rows, session)
    console.print(f"queue after {cycle} cycles: {len(queue)} alert(s) waiting")
    print_audit_summary(audit_path)
    cascadeflow.reset()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
