"""Run investigations over a folder of scenarios and grade them: per-scenario results and the summary
(pass rate, keyword coverage, cost, calls per tier, time). Memory is opened read-only: an evaluation
never writes into it."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean, median
from typing import Any

from cascadeflow import CascadeFlow, InvalidRequestError

from ..intake import find_scenarios, load_scenario
from ..investigation import InvestigationConfig, InvestigationReport, Investigator
from ..llm import ModelPlan
from ..memory import open_memory
from ..runbooks import RunbookIndex
from ..tools import recorded_toolbox
from .grader import Grade, Graded, grade


@dataclass(slots=True, kw_only=True)
class ScenarioResult:
    scenario_id: str
    grade: Grade
    cost_usd: float
    calls_by_tier: dict[str, int]
    seconds: float
    tools_called: list[str]
    author: str

    def to_dict(self) -> dict[str, Any]:
        return {"scenario_id": self.scenario_id, "passed": self.grade.passed, **self.grade.to_dict(),
                "cost_usd": self.cost_usd, "calls_by_tier": self.calls_by_tier, "seconds": round(self.seconds, 3),
                "tools_called": self.tools_called, "diagnosis_author": self.author}


@dataclass(slots=True)
class EvalRun:
    plan: str
    folder: str
    results: list[ScenarioResult] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        n = len(self.results)
        tiers: dict[str, int] = {}
        for r in self.results:
            for tier, count in r.calls_by_tier.items():
                tiers[tier] = tiers.get(tier, 0) + count
        return {
            "plan": self.plan, "folder": self.folder, "scenarios": n,
            "passed": sum(r.grade.passed for r in self.results),
            "pass_rate": sum(r.grade.passed for r in self.results) / n if n else 0.0,
            "keyword_coverage": fmean(r.grade.keyword_coverage for r in self.results) if n else 0.0,
            "trajectory_coverage": fmean(r.grade.trajectory_coverage for r in self.results) if n else 0.0,
            "cost_usd": sum(r.cost_usd for r in self.results), "calls_by_tier": tiers,
            "seconds_total": sum(r.seconds for r in self.results),
            "seconds_median": median(r.seconds for r in self.results) if n else 0.0,
            "answers_by_author": dict(Counter(r.author for r in self.results)),
        }

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary(), "results": [r.to_dict() for r in self.results]}

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))


def graded_view(report: InvestigationReport) -> Graded:
    return Graded(category=report.diagnosis.category, answer=report.answer,
                  tools_called=[c.tool for c in report.tool_calls], evidence_kinds_read=report.evidence_kinds_read,
                  loops=report.loops)


async def evaluate_folder(folder: str | Path, *, cf: CascadeFlow, plan: ModelPlan,
                          config: InvestigationConfig | None = None, memory_path: str | Path | None = None,
                          runbooks: RunbookIndex | None = None,
                          on_result: Callable[[ScenarioResult], None] | None = None) -> EvalRun:
    paths = find_scenarios(folder)
    if not paths:
        raise InvalidRequestError(f"no scenario (a folder with alert.json) under {folder}")
    memory = open_memory(str(memory_path), read_only=True) if memory_path else None
    runbooks = runbooks or RunbookIndex()
    investigator = Investigator(cf=cf, plan=plan, config=config)
    run = EvalRun(plan=plan.name, folder=str(folder))
    try:
        for path in paths:
            scenario = load_scenario(path)
            if not scenario.answer:
                continue  # a scenario without answer.yml cannot be graded
            toolbox = recorded_toolbox(scenario.evidence, memory=memory, runbooks=runbooks)
            started = time.perf_counter()
            report = await investigator.investigate(scenario.alert, toolbox)
            result = ScenarioResult(scenario_id=scenario.scenario_id,
                                    grade=grade(scenario.answer, graded_view(report)),
                                    cost_usd=report.spend.total,
                                    calls_by_tier=dict(report.spend.calls_by_tier),
                                    seconds=time.perf_counter() - started,
                                    tools_called=[c.tool for c in report.tool_calls],
                                    author=report.diagnosis.author)
            run.results.append(result)
            if on_result:
                on_result(result)
    finally:
        if memory is not None:
            memory.close()
    return run
