"""The `cascadeflow-incidents` command line, offline (analyzers only) so it runs anywhere."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from cascadeflow_incidents.cli import app

from .samples import SCENARIOS

runner = CliRunner()


def test_eval_prints_the_table_and_writes_json(tmp_path) -> None:
    out = tmp_path / "eval.json"
    result = runner.invoke(app, ["eval", str(SCENARIOS), "--no-model", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "pass_rate 100.0% (5/5)" in result.output
    assert json.loads(out.read_text())["summary"]["pass_rate"] == 1.0


def test_investigate_streams_the_steps_then_the_answer() -> None:
    result = runner.invoke(app, ["investigate", str(SCENARIOS / "crash-defect"), "--no-model"])
    assert result.exit_code == 0, result.output
    assert "[PLAN_MADE]" in result.output and "[FINDING] ACTIVE crash_loop" in result.output
    assert "ROOT_CAUSE_CATEGORY: code_defect" in result.output


def test_investigate_an_alertmanager_payload_with_recorded_evidence(tmp_path) -> None:
    payload = tmp_path / "alert.json"
    payload.write_text(json.dumps({"alerts": [{"labels": {"alertname": "KubePodCrashLooping", "severity": "page"},
                                               "annotations": {"summary": "crash loop"}}]}))
    result = runner.invoke(app, ["investigate", str(payload), "--evidence", str(SCENARIOS / "crash-defect"),
                                 "--no-model"])
    assert result.exit_code == 0, result.output
    assert "Traceback" in result.output
    missing = runner.invoke(app, ["investigate", str(payload), "--no-model"])
    assert missing.exit_code != 0 and "--evidence" in missing.output


def test_memory_add_search_and_insights(tmp_path) -> None:
    db = str(tmp_path / "m.sqlite")
    for title in ("checkout OOMKilled after deploy", "payments OOMKilled under batch load"):
        added = runner.invoke(app, ["memory", "add", "--db", db, "--title", title, "--symptoms", "exit code 137",
                                    "--root-cause", "memory limit", "--category", "resource_exhaustion",
                                    "--remediation", "raise limit", "--service", "shop", "--fix-worked"])
        assert added.exit_code == 0, added.output
    found = runner.invoke(app, ["memory", "search", "OOMKilled checkout", "--db", db])
    assert found.exit_code == 0 and found.output.index("checkout") < found.output.index("payments")
    insights = runner.invoke(app, ["memory", "insights", "--db", db])
    assert "'resource_exhaustion' recurs in 2 incidents" in insights.output


def test_a_bad_target_is_a_clear_error_not_a_traceback(tmp_path) -> None:
    result = runner.invoke(app, ["eval", str(tmp_path), "--no-model"])
    assert result.exit_code == 2 and "no scenario" in result.output


def test_the_console_script_is_installed_and_points_at_this_app() -> None:
    from importlib.metadata import entry_points

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "cascadeflow-incidents"]
    assert script.load() is __import__("cascadeflow_incidents.cli", fromlist=["main"]).main
