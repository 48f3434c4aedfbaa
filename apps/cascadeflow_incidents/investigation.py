"""The investigation loop: classify the task, recall memory and runbooks, plan, call tools, analyse,
reason, validate the diagnosis (escalating to the strong tier when it fails), answer. Every step is an
event on the investigation's EventLog; every model call goes through cascadeflow, routed by task type,
within the investigation's budget, audited."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from cascadeflow import BudgetExceeded, BudgetSession, CascadeFlow, CascadeflowError, ModelConfig, TaskType

from . import events as ev
from .analyzers import Finding, Observations, analyze, observe
from .diagnosis import Diagnosis, adopt, draft, parse_reply, validate
from .intake import Alert
from .llm import ROOT_CAUSE_REVIEW, ModelPlan
from .planner import next_plan
from .premium import call_premium_cost
from .tools import Toolbox, ToolResult
from .tools.sources import ALL_TOOLS

_READS = {t.declaration.name: t.declaration.reads for t in ALL_TOOLS}
_CATEGORY_LIST = "resource_exhaustion, configuration_error, infrastructure, dependency_failure, code_defect, healthy"


@dataclass(frozen=True, slots=True)
class InvestigationConfig:
    max_loops: int = 3
    budget_usd: float = 0.05
    max_tokens: int = 64
    use_model: bool = True  # False: analyzers only, no model call at all
    recall_k: int = 3


@dataclass(slots=True)
class Spend:
    """What the investigation's model calls cost, by task type, by model and by tier."""

    total: float = 0.0
    by_task: dict[str, float] = field(default_factory=dict)
    by_model: dict[str, float] = field(default_factory=dict)
    calls_by_tier: dict[str, int] = field(default_factory=dict)
    all_premium: float = 0.0  # the same calls answered by the run's premium model (see premium.py)

    def add(self, task: str, model: str, tier: str, cost: float) -> None:
        self.total += cost
        self.by_task[task] = self.by_task.get(task, 0.0) + cost
        self.by_model[model] = self.by_model.get(model, 0.0) + cost
        self.calls_by_tier[tier] = self.calls_by_tier.get(tier, 0) + 1


@dataclass(slots=True, kw_only=True)
class InvestigationReport:
    investigation_id: str
    alert: Alert
    diagnosis: Diagnosis
    findings: list[Finding]
    tool_calls: list[ToolResult]
    loops: int
    spend: Spend
    log: ev.EventLog
    stopped_by: str | None = None
    session: BudgetSession | None = None  # the investigation's budget on the ledger (model calls only)
    summaries: list[str] = field(default_factory=list)  # cheap-tier summaries of outputs cut to budget

    @property
    def ledger_spent(self) -> float:
        """What the ledger charged this investigation (micro-dollar precision)."""
        return self.session.spent if self.session is not None else 0.0

    @property
    def answer(self) -> str:
        return self.diagnosis.render()

    @property
    def evidence_kinds_read(self) -> list[str]:
        return [c.evidence_kind for c in self.tool_calls if c.evidence_kind and c.error is None]


class Investigator:
    """Runs investigations with one CascadeFlow (router = the plan's ModelRouter). `premium` is the run's
    premium model, what "all premium" is priced at (default: the plan's strongest); a run with several
    plans passes the same one to each investigator, so every investigation is compared to one model."""

    def __init__(self, *, cf: CascadeFlow, plan: ModelPlan, config: InvestigationConfig | None = None,
                 premium: ModelConfig | None = None):
        self.cf = cf
        self.plan = plan
        self.config = config or InvestigationConfig()
        self.premium = premium or plan.premium()

    async def investigate(self, alert: Alert, toolbox: Toolbox, *, log: ev.EventLog | None = None
                          ) -> InvestigationReport:
        log = log or ev.EventLog(uuid.uuid4().hex[:12])
        report = InvestigationReport(investigation_id=log.investigation_id, alert=alert, diagnosis=draft([]),
                                     findings=[], tool_calls=[], loops=0, spend=Spend(), log=log)
        log.emit(ev.InvestigationStarted, alert=alert.to_dict())
        try:
            await self._run(report, toolbox)
        finally:
            log.emit(ev.CostUpdate, total_usd=report.spend.total, by_task=report.spend.by_task,
                     by_model=report.spend.by_model, calls_by_tier=report.spend.calls_by_tier,
                     budget_usd=self.config.budget_usd, all_premium_usd=report.spend.all_premium)
            log.emit(ev.InvestigationFinished, category=report.diagnosis.category,
                     root_cause=report.diagnosis.root_cause, answer=report.answer, loops=report.loops,
                     tool_calls=tuple(c.tool for c in report.tool_calls), cost_usd=report.spend.total,
                     stopped_by=report.stopped_by)
            log.close()
        return report

    async def _run(self, report: InvestigationReport, toolbox: Toolbox) -> None:
        alert, log = report.alert, report.log
        triage = alert.status == "resolved" or alert.severity == "INFO"
        log.emit(ev.TaskClassified, task="triage" if triage else "investigate",
                 reason=(f"{alert.status} alert of severity {alert.severity}: a quick check of the current state"
                         if triage else f"firing {alert.severity} alert: full investigation"))
        runbooks = await self._recall(report, toolbox)
        obs = Observations()
        max_loops = 1 if triage else self.config.max_loops
        for loop in range(1, max_loops + 1):
            called = {c.tool for c in report.tool_calls}
            unclaimed = getattr(toolbox.backend.evidence, "unclaimed", list)()
            plan = next_plan(loop, alert, obs, report.findings, toolbox.available(), called, unclaimed)
            if not plan.steps:
                break
            report.loops = loop
            log.emit(ev.PlanMade, loop=loop, tools=tuple(s.tool for s in plan.steps), reason=plan.reason)
            for step in plan.steps:
                await self._call_tool(report, toolbox, obs, loop, step.tool, step.arguments)
            self._analyse(report, obs)
        diagnosis = replace(draft(report.findings), runbooks=tuple(runbooks))
        report.diagnosis = await self._reason(report, diagnosis) if self.config.use_model else diagnosis

    async def _recall(self, report: InvestigationReport, toolbox: Toolbox) -> list[str]:
        alert, log, cited = report.alert, report.log, []
        available = set(toolbox.available())
        if "recall_similar_incidents" in available:
            result = await self._call_tool(report, toolbox, None, 0, "recall_similar_incidents",
                                           {"query": alert.text(), "k": self.config.recall_k})
            for hit in result.data or []:
                log.emit(ev.MemoryHit, incident_id=hit["id"], score=hit["score"], age_days=hit["age_days"],
                         summary=f"{hit['title']}: {hit['root_cause']} ({hit['category']})")
        if "lookup_runbook" in available:
            result = await self._call_tool(report, toolbox, None, 0, "lookup_runbook",
                                           {"alert_name": alert.name, "query": alert.text()})
            for hit in (result.data or [])[:2]:
                log.emit(ev.RunbookHit, runbook=hit["runbook"], title=hit["title"], score=hit["score"],
                         matched_by=hit["matched_by"])
                cited.append(f"{hit['runbook']}: {hit['title']} (matched by {hit['matched_by']})")
        return cited

    async def _call_tool(self, report: InvestigationReport, toolbox: Toolbox, obs: Observations | None,
                         loop: int, tool: str, arguments: dict) -> ToolResult:
        report.log.emit(ev.ToolCalled, loop=loop, tool=tool, arguments=dict(arguments))
        result = await toolbox.call(tool, arguments)
        report.tool_calls.append(result)
        report.log.emit(ev.ToolReturned, loop=loop, tool=tool, evidence_kind=result.evidence_kind,
                        chars=len(result.text), truncated=result.truncated, elapsed_ms=result.elapsed_ms,
                        error=result.error, preview=result.text[:200])
        if obs is not None and result.error is None and result.data is not None:
            kind = result.evidence_kind or str(arguments.get("kind") or tool)
            observe(obs, _READS.get(tool) if tool != "read_evidence" else None, kind, result.data)
            if result.truncated and self.config.use_model:
                await self._summarise(report, result)
        return result

    async def _summarise(self, report: InvestigationReport, result: ToolResult) -> None:
        """An output cut to the budget is summarised on the cheap tier for the reasoning prompt (the
        analyzers read the whole output regardless)."""
        messages = [{"role": "system", "content": "Summarise this tool output for an SRE in three short lines: "
                     "what is failing, where, and any error text quoted exactly."},
                    {"role": "user", "content": f"{result.tool}: {result.text}"}]
        try:
            summary, _ = await self._ask(report, TaskType.DATA_RETRIEVAL, messages)
        except BudgetExceeded:
            report.stopped_by = "budget"
            return
        except CascadeflowError:
            return  # the full output still reached the analyzers
        report.summaries.append(f"{result.tool}: {summary.strip()[:300]}")

    def _analyse(self, report: InvestigationReport, obs: Observations) -> None:
        before = {(f.check, f.subject, f.active) for f in report.findings}
        report.findings = analyze(obs)
        for f in report.findings:
            if (f.check, f.subject, f.active) not in before:
                report.log.emit(ev.FindingStated, check=f.check, subject=f.subject, statement=f.statement,
                                category=f.category, active=f.active, evidence=tuple(e.cite() for e in f.evidence))

    def _prompt(self, report: InvestigationReport, diagnosis: Diagnosis) -> list[dict]:
        findings = "\n".join(f"- {'ACTIVE' if f.active else 'recovered'}: {f.statement[:160]}"
                             for f in report.findings[:4]) or "- nothing abnormal found"
        return [
            {"role": "system", "content": "You are an SRE. Give the root cause of the alert from the findings. "
             f"Reply in two lines:\nROOT_CAUSE: <one sentence naming the failing object>\nCATEGORY: <one of "
             f"{_CATEGORY_LIST}>"},
            {"role": "user", "content": f"Alert: {report.alert.title}\nFindings:\n{findings}" + "".join(
                f"\nTool summary: {s}" for s in report.summaries[:2])},
        ]

    async def _reason(self, report: InvestigationReport, diagnosis: Diagnosis) -> Diagnosis:
        """The reasoning model answers; a reply that fails validation escalates once to the review tier;
        when neither validates, the analyzers' draft stands (it cites only evidence)."""
        for task in (TaskType.COMPLEX_REASONING, ROOT_CAUSE_REVIEW):
            try:
                reply, model = await self._ask(report, task, self._prompt(report, diagnosis))
            except BudgetExceeded:
                report.stopped_by = "budget"
                report.log.emit(ev.DiagnosisChecked, author="analyzers", category=diagnosis.category, ok=True,
                                problems=("investigation budget exhausted before the model could answer",),
                                action="analyzers stand")
                return diagnosis
            except CascadeflowError as exc:  # a provider failure must not lose the evidence-backed draft
                report.log.emit(ev.DiagnosisChecked, author=task.value, category=None, ok=False,
                                problems=(f"model call failed: {exc}",), action="analyzers stand")
                return diagnosis
            root, category = parse_reply(reply)
            verdict = validate(root, category, report.findings)
            last = task is ROOT_CAUSE_REVIEW
            action = "accepted" if verdict.ok else ("analyzers stand" if last else "escalate")
            report.log.emit(ev.DiagnosisChecked, author=model, category=category, ok=verdict.ok,
                            problems=verdict.problems, action=action)
            if verdict.ok and root and category:
                return adopt(diagnosis, root, category, model)
        return diagnosis

    async def _ask(self, report: InvestigationReport, task: TaskType, messages: Sequence[dict]) -> tuple[str, str]:
        route = self.plan.router.route(task)
        first = route.models[0].id if route else "?"
        report.log.emit(ev.ModelSelection, task_type=task.value, model=first, tier=self.plan.tier_of(first),
                        reason=route.reason if route else "")
        if report.session is None:  # the budget is opened by the first model call
            report.session = BudgetSession(self.cf, limit=self.config.budget_usd,
                                           session_id=report.investigation_id)
        result = await report.session.acomplete(messages=list(messages), max_tokens=self.config.max_tokens,
                                         metadata={"task_type": task.value, "investigation": report.investigation_id,
                                                   "alert": report.alert.name, "severity": report.alert.severity})
        tier = self.plan.tier_of(result.model)
        attempts = result.tiers or [{"model": result.model, "cost_usd": float(result.cost)}]
        for attempt in attempts:  # a cascade pays every tier it tried
            model = str(attempt.get("model") or result.model)
            report.spend.add(task.value, model, self.plan.tier_of(model), float(attempt.get("cost_usd") or 0.0))
        if self.premium is not None:
            report.spend.all_premium += float(call_premium_cost(attempts, self.premium, self.cf.runtime.price_book))
        report.log.emit(ev.ModelAnswered, task_type=task.value, model=result.model, tier=tier,
                        cost_usd=float(result.cost), latency_ms=result.latency_ms, request_id=result.request_id)
        return result.content, result.model


IncidentAgent = Investigator  # the name the IncidentOS write-up gives the agent loop
