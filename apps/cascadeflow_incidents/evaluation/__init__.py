"""Graded evaluation: the grader (answer.yml) and the runner over a folder of scenarios."""

from .grader import Grade, Graded, grade, step_kind
from .runner import EvalRun, ScenarioResult, evaluate_folder, graded_view

__all__ = ["EvalRun", "Grade", "Graded", "ScenarioResult", "evaluate_folder", "grade", "graded_view", "step_kind"]
