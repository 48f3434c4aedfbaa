"""Grading from answer.yml, and the runner over a folder of scenarios (which never writes to memory)."""

from __future__ import annotations

from cascadeflow import CascadeFlow
from cascadeflow_incidents.evaluation import Graded, evaluate_folder, grade, step_kind
from cascadeflow_incidents.investigation import InvestigationConfig
from cascadeflow_incidents.llm import embedded_plan
from cascadeflow_incidents.memory import IncidentRecord, MemoryStore

from .samples import SCENARIOS

SPEC = {"root_cause_category": "resource_exhaustion", "required_keywords": ["exit code 137", "Memory"],
        "forbidden_categories": ["healthy"], "optimal_trajectory": ["list_eks_pods", "get_eks_events"],
        "required_queries": ["list_eks_pods"], "max_investigation_loops": 2}


def _graded(**kw) -> Graded:
    base = {"category": "resource_exhaustion", "answer": "OOM: exit code 137, memory limit",
            "tools_called": ["list_pods"], "evidence_kinds_read": ["eks_pods"], "loops": 2}
    return Graded(**{**base, **kw})


def test_trajectory_steps_name_the_evidence_kind_after_the_verb() -> None:
    assert step_kind("list_eks_pods") == "eks_pods" and step_kind("get_eks_node_health") == "eks_node_health"


def test_a_complete_answer_passes_and_reports_trajectory_coverage() -> None:
    g = grade(SPEC, _graded())
    assert g.passed and g.keyword_coverage == 1.0 and g.trajectory_coverage == 0.5


def test_each_rule_fails_on_its_own() -> None:
    wrong = grade(SPEC, _graded(category="code_defect"))
    assert wrong.reasons == ("category code_defect (expected resource_exhaustion)",)
    assert grade(SPEC, _graded(answer="exit code 137")).missing_keywords == ("Memory",)
    assert grade(SPEC, _graded(category="healthy")).forbidden_hit
    assert grade(SPEC, _graded(evidence_kinds_read=[], tools_called=[])).missing_queries == ("list_eks_pods",)
    assert not grade(SPEC, _graded(loops=3)).passed


async def test_the_runner_grades_a_folder_and_leaves_the_memory_untouched(tmp_path) -> None:
    memory = tmp_path / "memory.sqlite"
    store = MemoryStore(memory)
    store.add(IncidentRecord(title="checkout crash KeyError", symptoms="crash loop", root_cause="bad deploy",
                             category="code_defect", remediation="roll back"))
    store.close()
    before = memory.read_bytes()
    run = await evaluate_folder(SCENARIOS, cf=CascadeFlow(audit=False), plan=embedded_plan(),
                                config=InvestigationConfig(use_model=False), memory_path=memory)
    summary = run.summary()
    assert summary["scenarios"] == 5 and summary["pass_rate"] == 1.0 and summary["keyword_coverage"] == 1.0
    assert memory.read_bytes() == before
    by_id = {r.scenario_id: r for r in run.results}
    assert by_id["cache-refused"].grade.category == "dependency_failure"
    assert "read_evidence" in by_id["cache-refused"].tools_called  # the kind no dedicated tool reads
    assert "recall_similar_incidents" in by_id["crash-defect"].tools_called
    # a database's events beside the cluster's and its metrics: read, analysed, and the cause named
    assert by_id["db-connections"].grade.category == "dependency_failure" and by_id["db-connections"].grade.passed
    run.write_json(tmp_path / "out.json")
    assert '"pass_rate": 1.0' in (tmp_path / "out.json").read_text()
