"""`cascadeflow-incidents`: investigate an alert or a scenario, evaluate a folder of scenarios, and add to
or search the incident memory. The only module of the app that prints."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cascadeflow import CascadeFlow, CascadeflowError

from . import events as ev
from .evaluation import EvalRun, evaluate_folder
from .intake import load_scenario, parse_payload
from .intake.scenario import own_evidence
from .investigation import InvestigationConfig, Investigator
from .llm import PLANS, plan_for
from .memory import IncidentRecord, open_memory, reflect
from .runbooks import RunbookIndex
from .tools import LiveConfig, live_toolbox, recorded_toolbox

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="IncidentOS on cascadeflow: investigate alerts with memory, runbooks, tools and analyzers.")
memory_app = typer.Typer(no_args_is_help=True, help="The incident memory (SQLite).")
app.add_typer(memory_app, name="memory")
console = Console()

PLAN_HELP = f"model plan: {', '.join(PLANS)} (embedded runs offline on the local model)"


def _cf(plan_name: str, cheap: str | None, strong: str | None, audit: str | None):
    plan = plan_for(plan_name, cheap=cheap, strong=strong)
    return CascadeFlow(router=plan.router, audit=audit, ledger="memory://"), plan


def _runbooks(folder: str | None) -> RunbookIndex:
    return RunbookIndex(folder) if folder else RunbookIndex()


def _line(event: ev.Event) -> str:
    d = event.to_dict()
    tag = f"[{event.type.upper()}]"
    if isinstance(event, ev.ModelSelection):
        return f"{tag} {d['task_type']} -> {d['model']} ({d['tier']}): {d['reason']}"
    if isinstance(event, ev.ToolReturned):
        return f"{tag} {d['tool']} ({d['evidence_kind']}) {d['chars']} chars" + (f" error: {d['error']}"
                                                                               if d["error"] else "")
    if isinstance(event, ev.FindingStated):
        return f"{tag} {'ACTIVE' if d['active'] else 'recovered'} {d['check']} {d['subject']}: {d['statement'][:160]}"
    if isinstance(event, ev.InvestigationFinished):
        return f"{tag} {d['category']} after {d['loops']} loop(s), ${d['cost_usd']:.6f}"
    skip = {"type", "investigation_id", "seq", "at", "answer", "alert"}
    return f"{tag} " + ", ".join(f"{k}={v}" for k, v in d.items() if k not in skip)


@app.command()
def investigate(
    target_arg: str = typer.Argument(..., help="a scenario folder, or an alert payload JSON (Alertmanager, Grafana)"),
    evidence: str = typer.Option(None, help="folder of <kind>.json evidence for an alert payload"),
    kubernetes: str = typer.Option(None, help="live: Kubernetes API server URL (token from $KUBE_TOKEN)"),
    prometheus: str = typer.Option(None, help="live: Prometheus URL"),
    loki: str = typer.Option(None, help="live: Loki URL"),
    plan: str = typer.Option("embedded", help=PLAN_HELP),
    cheap: str = typer.Option(None, help="cheap model, provider/model"),
    strong: str = typer.Option(None, help="strong model, provider/model"),
    no_model: bool = typer.Option(False, "--no-model", help="analyzers only, no model call"),
    memory: str = typer.Option(None, help="incident memory (SQLite file) to recall from"),
    runbooks: str = typer.Option(None, help="folder of markdown runbooks (default: the ones shipped)"),
    budget: float = typer.Option(0.05, help="budget per investigation, USD"),
    audit: str = typer.Option(None, help="audit log path (default: cascadeflow's)"),
) -> None:
    """Investigate one alert end to end and print every step, then the answer."""
    target = Path(target_arg)
    try:
        store = open_memory(memory, read_only=True) if memory else None
        if target.is_dir():
            scenario = load_scenario(target)
            alert = scenario.alert
            toolbox = recorded_toolbox(scenario.evidence, memory=store, runbooks=_runbooks(runbooks))
        else:
            alert = parse_payload(json.loads(target.read_text()))[0]
            if evidence:
                toolbox = recorded_toolbox(own_evidence(Path(evidence)), memory=store, runbooks=_runbooks(runbooks))
            elif kubernetes or prometheus or loki:
                live = LiveConfig(kubernetes_url=kubernetes, kubernetes_token=os.environ.get("KUBE_TOKEN"),
                                  namespace=alert.namespace, prometheus_url=prometheus, loki_url=loki)
                toolbox = live_toolbox(live, memory=store, runbooks=_runbooks(runbooks))
            else:
                raise typer.BadParameter("an alert payload needs --evidence DIR (recorded) or live sources "
                                         "(--kubernetes, --prometheus, --loki)")
        cf, model_plan = _cf(plan, cheap, strong, audit)
        investigator = Investigator(cf=cf, plan=model_plan,
                                    config=InvestigationConfig(budget_usd=budget, use_model=not no_model))
        log = ev.EventLog(alert.fingerprint)
        report = asyncio.run(_stream(investigator, alert, toolbox, log))
    except (CascadeflowError, OSError, json.JSONDecodeError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    console.print()
    console.print(report.answer, markup=False)


async def _stream(investigator: Investigator, alert, toolbox, log: ev.EventLog):
    task = asyncio.create_task(investigator.investigate(alert, toolbox, log=log))
    async for event in log.subscribe():
        console.print(_line(event), markup=False)
    return await task


def _print_run(run: EvalRun) -> None:
    table = Table(title=f"{run.plan}: {run.folder}")
    for col in ("scenario", "pass", "category", "expected", "keywords", "trajectory", "cost $", "s", "why"):
        table.add_column(col)
    for r in run.results:
        g = r.grade
        table.add_row(r.scenario_id, "yes" if g.passed else "NO", g.category, str(g.expected_category),
                      f"{g.keyword_coverage:.0%}", f"{g.trajectory_coverage:.0%}", f"{r.cost_usd:.6f}",
                      f"{r.seconds:.1f}", "; ".join(g.reasons))
    console.print(table)
    s = run.summary()
    console.print(f"pass_rate {s['pass_rate']:.1%} ({s['passed']}/{s['scenarios']}), keyword coverage "
                  f"{s['keyword_coverage']:.1%}, cost ${s['cost_usd']:.6f}, calls per tier {s['calls_by_tier']}, "
                  f"{s['seconds_total']:.1f}s")


@app.command("eval")
def eval_command(
    folder: str = typer.Argument(..., help="folder of scenarios (alert.json, evidence, answer.yml)"),
    json_path: str = typer.Option(None, "--json", help="write per-scenario results and the summary here"),
    plan: str = typer.Option("embedded", help=PLAN_HELP),
    cheap: str = typer.Option(None, help="cheap model, provider/model"),
    strong: str = typer.Option(None, help="strong model, provider/model"),
    no_model: bool = typer.Option(False, "--no-model", help="analyzers only, no model call"),
    memory: str = typer.Option(None, help="incident memory to recall from (opened read-only)"),
    runbooks: str = typer.Option(None, help="folder of markdown runbooks (default: the ones shipped)"),
    audit: str = typer.Option(None, help="audit log path (default: cascadeflow's)"),
) -> None:
    """Grade investigations of every scenario in a folder against its answer.yml."""
    try:
        cf, model_plan = _cf(plan, cheap, strong, audit)
        run = asyncio.run(evaluate_folder(folder, cf=cf, plan=model_plan, memory_path=memory,
                                          runbooks=_runbooks(runbooks),
                                          config=InvestigationConfig(use_model=not no_model)))
    except (CascadeflowError, OSError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    _print_run(run)
    if json_path:
        run.write_json(json_path)
        console.print(f"wrote {json_path}")


@memory_app.command("add")
def memory_add(
    db: str = typer.Option(..., help="memory: a SQLite file (created if missing) or a postgresql:// URL"),
    title: str = typer.Option(...), symptoms: str = typer.Option(...), root_cause: str = typer.Option(...),
    category: str = typer.Option(...), remediation: str = typer.Option(...),
    service: Annotated[list[str] | None, typer.Option(help="affected service (repeatable)")] = None,
    deploy_version: str = typer.Option(None), fix_worked: bool = typer.Option(None, "--fix-worked/--fix-failed"),
    minutes_to_resolve: float = typer.Option(None), occurred_at: str = typer.Option(None, help="ISO time"),
) -> None:
    """Remember a resolved incident (write-back after resolution)."""
    extra = {"occurred_at": occurred_at} if occurred_at else {}
    record = IncidentRecord(title=title, symptoms=symptoms, root_cause=root_cause, category=category,
                            remediation=remediation, services=tuple(service or ()), deploy_version=deploy_version,
                            fix_worked=fix_worked, minutes_to_resolve=minutes_to_resolve, source="cli", **extra)
    store = open_memory(db)
    try:
        store.add(record)
    except CascadeflowError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    finally:
        store.close()
    console.print(f"remembered {record.id}")


@memory_app.command("search")
def memory_search(
    query: str = typer.Argument(...), db: str = typer.Option(...), k: int = typer.Option(3),
    no_decay: bool = typer.Option(False, "--no-decay", help="ignore age (no recency decay)"),
) -> None:
    """Recall the incidents most similar to QUERY."""
    store = open_memory(db, read_only=True)
    hits = store.search(query, k=k, half_life_days=None if no_decay else 90.0)
    store.close()
    table = Table()
    for col in ("id", "score", "similarity", "keywords", "recency", "category", "title"):
        table.add_column(col)
    for h in hits:
        table.add_row(h.record.id, f"{h.score:.3f}", f"{h.similarity:.3f}", f"{h.keyword:.2f}",
                      f"{h.recency:.2f}", h.record.category, h.record.title)
    console.print(table)


@memory_app.command("insights")
def memory_insights(db: str = typer.Option(...), minimum: int = typer.Option(2)) -> None:
    """Recurring patterns across remembered incidents, with the incidents they rest on."""
    store = open_memory(db, read_only=True)
    insights = reflect(store.all(), minimum=minimum)
    store.close()
    for insight in insights:
        console.print(f"- {insight.statement} [{', '.join(insight.incidents)}]", markup=False)


def main() -> None:
    app()
