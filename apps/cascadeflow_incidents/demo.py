"""`make demo`: the incident storm. The app's recorded scenarios fire as Alertmanager webhooks from several
clusters at once; each incident is investigated by the agent (memory recall and write-back, runbooks,
tools, analyzers), routed by severity and task type, cascaded, within the day's budget on a SQLite ledger;
what the day cannot afford waits in the durable queue and is drained on the next budget day; every call
is audited. Everything goes to the data directory the web app shows (`make serve`), and a static
snapshot of the dashboard is written beside it.

Offline (no key) the embedded SmolLM2-135M answers on both tiers, priced per token at the rates of the
Groq models it stands in for; with GROQ_API_KEY, OPENAI_API_KEY or ANTHROPIC_API_KEY set (or --cheap and
--strong) real models answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cascadeflow import (
    BudgetConfig,
    CascadeFlow,
    ConfigurationError,
    DeferredQueue,
    ModelConfig,
    PriceBook,
    QualityConfig,
    Runtime,
    open_ledger,
)
from cascadeflow.trace import iter_records, open_sinks
from cascadeflow_incidents import report as out
from cascadeflow_incidents.dispatch import BudgetDays, DayResult, Dispatch
from cascadeflow_incidents.evaluation.retrieval import load_set, set_incidents
from cascadeflow_incidents.investigation import InvestigationConfig, Investigator
from cascadeflow_incidents.llm import ModelPlan, model_config, priced_local, severity_plans
from cascadeflow_incidents.memory import MemoryStore
from cascadeflow_incidents.runbooks import RunbookIndex
from cascadeflow_incidents.storm import (
    cluster_names,
    incidents_of,
    load_scenarios,
    storm_payloads,
)
from cascadeflow_incidents.storm_summary import StormSummary, summarise_storm
from cascadeflow_incidents.web import DataDir

DEFAULT_DATA_DIR = Path(".cascadeflow") / "incidents"
# The first key found picks the models; the embedded model's two tiers are priced like the first pair.
CLOUD_MODELS = (("GROQ_API_KEY", "groq/llama-3.1-8b-instant", "groq/llama-3.3-70b-versatile"),
                ("OPENAI_API_KEY", "openai/gpt-4o-mini", "openai/gpt-4o"),
                ("ANTHROPIC_API_KEY", "anthropic/claude-haiku-4-5", "anthropic/claude-sonnet-4-5"))
# The default per-investigation budget holds this many strong-tier calls of this many prompt tokens (a
# reasoning draft, its escalation and the review; the reasoning prompt is ~300 tokens); the default day's
# budget holds two such investigations at their worst, so a storm overflows the first day.
CALLS_PER_INVESTIGATION = 3
PROMPT_TOKENS = 600
INVESTIGATIONS_PER_DAY = 2
SUMMARY_FILE = "summary.json"  # the summary table's numbers, beside the files the web app reads


@dataclass(frozen=True, slots=True)
class StormOptions:
    data_dir: Path = DEFAULT_DATA_DIR
    scenarios: Path | None = None  # None: the samples shipped in the package
    clusters: int = 2
    daily_budget: float | None = None
    investigation_budget: float | None = None
    max_tokens: int = 48
    concurrency: int = 2
    max_days: int = 6
    cheap: str | None = None
    strong: str | None = None
    snapshot: Path | None = None  # default: <data_dir>/dashboard.html


def models_for(options: StormOptions, environ: Mapping[str, str], price_book: PriceBook
               ) -> tuple[ModelConfig, ModelConfig, str]:
    """(cheap, strong, label): the --cheap/--strong pair, else the first cloud pair whose key is set, else the
    embedded model on both tiers, priced per token like the first cloud pair."""
    if options.cheap and options.strong:
        return model_config(options.cheap), model_config(options.strong), f"{options.cheap} / {options.strong}"
    for key, cheap, strong in CLOUD_MODELS:
        if environ.get(key):
            return model_config(cheap), model_config(strong), f"{cheap} / {strong} ({key} is set)"
    _, like_cheap, like_strong = CLOUD_MODELS[0]
    return (priced_local("smollm2-135m", like_cheap, price_book),
            priced_local("smollm2-135m-instruct", like_strong, price_book),
            f"the embedded SmolLM2-135M on both tiers, offline, priced per token like {like_cheap} / {like_strong}")


def budgets(options: StormOptions, strong: ModelConfig, price_book: PriceBook) -> tuple[float, float]:
    """(per investigation, per day) in USD: the options', or the defaults sized on the strong tier's price."""
    per_call = price_book.worst_case(strong, PROMPT_TOKENS, options.max_tokens)
    investigation = options.investigation_budget or float(per_call * CALLS_PER_INVESTIGATION)
    return investigation, options.daily_budget or investigation * INVESTIGATIONS_PER_DAY


def seed_memory(path: Path) -> MemoryStore:
    """A fresh memory holding the app's labelled past incidents (the retrieval set), dated back from now."""
    store = MemoryStore(path)
    for record in set_incidents(load_set(), datetime.now(UTC)):
        store.add(record)
    return store


@dataclass(slots=True, kw_only=True)
class Storm:
    """Everything one storm run wires together (see `build`)."""

    dispatch: Dispatch
    runtime: Runtime
    plans: dict[str, ModelPlan]
    strong: ModelConfig
    price_book: PriceBook
    label: str
    investigation_budget: float
    daily_budget: float


def build(options: StormOptions, files: DataDir, environ: Mapping[str, str], *,
          resolve_provider: Callable[[ModelConfig], Any] | None = None) -> Storm:
    """The dispatcher over the data directory: one runtime (the ledger on budget days, the audit log),
    the queue, the memory, one investigator per severity. `resolve_provider` (tests) replaces the
    providers."""
    price_book = PriceBook()
    cheap, strong, label = models_for(options, environ, price_book)
    per_investigation, per_day = budgets(options, strong, price_book)
    days = BudgetDays()
    ledger = open_ledger(f"sqlite:///{files.budget.resolve()}", clock=days)
    budget = BudgetConfig(daily_limit=per_day)
    runtime = Runtime(price_book=price_book, ledger=ledger, sinks=open_sinks(str(files.audit)),
                      **({"resolve_provider": resolve_provider} if resolve_provider else {}))
    plans = severity_plans(cheap, strong)
    config = InvestigationConfig(budget_usd=per_investigation, max_tokens=options.max_tokens)
    investigators = {
        severity: Investigator(cf=CascadeFlow(runtime=runtime, router=plan.router, budget_config=budget,
                                              quality_config=QualityConfig.preset("balanced")),
                               plan=plan, config=config, premium=strong)
        for severity, plan in plans.items()}
    dispatch = Dispatch(investigators=investigators, budget=budget, ledger=ledger, days=days,
                        queue=DeferredQueue(files.queue), files=files, runbooks=RunbookIndex(),
                        memory=seed_memory(files.memory), concurrency=options.concurrency)
    return Storm(dispatch=dispatch, runtime=runtime, plans=plans, strong=strong, price_book=price_book,
                 label=label, investigation_budget=per_investigation, daily_budget=per_day)


async def run_storm(options: StormOptions, environ: Mapping[str, str] | None = None, *,
                    resolve_provider: Callable[[ModelConfig], Any] | None = None) -> StormSummary:
    """The whole storm: build, receive, investigate day after day until the queue is empty (or
    `max_days`), summarise. Prints as it goes."""
    started = time.time()
    files = reset(DataDir(options.data_dir))
    storm = build(options, files, os.environ if environ is None else environ, resolve_provider=resolve_provider)
    dispatch = storm.dispatch
    dispatch.on_report = out.print_investigation
    payloads = storm_payloads(load_scenarios(options.scenarios), cluster_names(options.clusters))
    received, incidents = incidents_of(payloads)
    storm_day = dispatch.days.label

    def record_run(days: list[DayResult], finished_at: float | None = None) -> None:
        """run.json names the storm's day and every budget day spent on so far (the budget page shows each)."""
        files.write_run(label=storm.label, plan="severity", daily_budget_usd=storm.daily_budget,
                        budget_day=storm_day, budget_days=[d.day for d in days], started_at=started,
                        finished_at=finished_at)

    record_run([])
    out.print_header(storm.label, len(received), len(incidents), storm.investigation_budget, storm.daily_budget,
                     options.data_dir)
    try:
        days: list[DayResult] = [await dispatch.first_day(incidents)]
        out.print_day(days[-1])
        record_run(days)
        by_id = {i.incident_id: i for i in incidents}
        while len(dispatch.queue) and len(days) < options.max_days:
            days.append(await dispatch.next_day(by_id))
            out.print_day(days[-1])
            record_run(days)
        still_queued = len(dispatch.queue)
    finally:
        close(storm)  # whatever happened, every audit record written so far is on disk
    summary = summarise_storm(
        alerts=len(received), incidents=len(incidents), days=days, deferred=dispatch.deferred,
        still_queued=still_queued, reports=dispatch.reports, records=list(iter_records(files.audit)),
        tier_of=next(iter(storm.plans.values())).tier_of, premium=storm.strong, price_book=storm.price_book)
    record_run(days, finished_at=time.time())
    seconds = time.time() - started
    numbers = {**summary.to_dict(), "wall_seconds": round(seconds, 1)}
    (files.root / SUMMARY_FILE).write_text(json.dumps(numbers, indent=2))
    out.print_summary(summary, seconds)
    return summary


def reset(data: DataDir) -> DataDir:
    """An empty data directory for a new run: the files a run writes go (with SQLite's side files and
    rotated audit logs); anything else in the directory stays."""
    data.mkdir()
    for path in (data.events, data.incidents, data.audit, data.memory, data.budget, data.queue, data.run,
                 data.root / SUMMARY_FILE):
        for written in data.root.glob(f"{path.name}*"):
            written.unlink()
    return data


def close(storm: Storm) -> None:
    """Flush the audit log and close the stores, so every record is on disk before it is read back."""
    dispatch = storm.dispatch
    for sink in storm.runtime.sinks:
        getattr(sink, "close", lambda: None)()
    dispatch.queue.close()
    dispatch.ledger.close()
    if dispatch.memory is not None:
        dispatch.memory.close()


def write_dashboard(data_dir: Path, out_path: Path) -> Path | None:
    """The dashboard as one self-contained HTML file; None (and why) without the web extra."""
    try:
        from cascadeflow_incidents.web import write_snapshot

        return write_snapshot(data_dir, out_path)
    except ConfigurationError as exc:
        out.print_no_snapshot(exc)
        return None


def parse_options(argv: list[str] | None) -> StormOptions:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="where everything is written")
    parser.add_argument("--scenarios", type=Path, help="recorded scenarios to replay (default: the shipped samples)")
    parser.add_argument("--clusters", type=int, default=2, help="clusters each scenario fires in")
    parser.add_argument("--daily-budget", type=float, help="USD per budget day (default: two investigations)")
    parser.add_argument("--investigation-budget", type=float, help="USD per investigation")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--concurrency", type=int, default=2, help="investigations at once")
    parser.add_argument("--max-days", type=int, default=6, help="budget days before the run stops")
    parser.add_argument("--cheap", help="cheap model, provider/model (with --strong)")
    parser.add_argument("--strong", help="strong model, provider/model (with --cheap)")
    parser.add_argument("--snapshot", type=Path, help="static dashboard (default: DATA_DIR/dashboard.html)")
    args = parser.parse_args(argv)
    if bool(args.cheap) != bool(args.strong):
        parser.error("--cheap and --strong go together")
    try:
        for model in filter(None, (args.cheap, args.strong)):
            model_config(model)
    except ConfigurationError as exc:
        parser.error(str(exc))
    return StormOptions(**vars(args))


async def main(argv: list[str] | None = None, *, environ: Mapping[str, str] | None = None,
               resolve_provider: Callable[[ModelConfig], Any] | None = None) -> int:
    """Exit status 0 when every incident was investigated, 1 when some are still queued after --max-days."""
    options = parse_options(argv)
    summary = await run_storm(options, environ, resolve_provider=resolve_provider)
    snapshot = write_dashboard(options.data_dir, options.snapshot or options.data_dir / "dashboard.html")
    out.print_paths(options.data_dir, snapshot)
    return 0 if summary.still_queued == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

