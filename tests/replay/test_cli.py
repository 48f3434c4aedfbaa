import csv
import json

from replay_fixtures import HEADER, answer, write_jsonl
from typer.testing import CliRunner

import cascadeflow.cli.replay  # noqa: F401  registers the `replay` sub-app
from cascadeflow.cli import app

runner = CliRunner()
MIX, GPT4 = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"


def test_convert_then_run_sweep_writes_json_and_plot(tmp_path):
    folder = tmp_path / "gsm8k"
    folder.mkdir()
    with (folder / "gsm8k_responses.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["prompt", MIX, GPT4, f"{MIX}_response", f"{GPT4}_response"])
        for i in range(12):
            right = i % 3 != 0  # the wrong drafts carry an arithmetic slip, which the arithmetic check vetoes
            total = 2 * i if right else 2 * i + 1
            w.writerow([f"What is {i} + {i}?", str(right), "True", f"{i} + {i} = {total}\n#### {total}",
                        f"The answer is {2 * i}."])
    out = tmp_path / "r.jsonl"
    result = runner.invoke(app, ["replay", "convert", "--from", "routellm", str(folder), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote 12 queries" in result.output
    halves = runner.invoke(app, ["replay", "split", str(out), "--out-a", str(tmp_path / "a.jsonl"),
                                 "--out-b", str(tmp_path / "b.jsonl"), "--seed", "1"])
    assert halves.exit_code == 0, halves.output
    report, png = tmp_path / "report.json", tmp_path / "plot.png"
    result = runner.invoke(app, ["replay", "run", str(tmp_path / "b.jsonl"), "--models", f"{MIX},{GPT4}",
                                 "--sweep", "--calibrate-on", str(tmp_path / "a.jsonl"), "--no-fit-calibration",
                                 "--target-quality", "0.9", "--json", str(report), "--plot", str(png)])
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert data["n"] == 6 and data["models"] == [MIX, GPT4]
    point = data["operating_points"][0]
    for key in ("threshold", "strong_call_fraction", "cost_usd", "cost_fraction", "quality", "quality_fraction",
                "gap_recovered"):
        assert key in point
    assert {"cheap-only", "strong-only", "oracle"} <= {b["name"] for b in data["baselines"]}
    assert data["target"]["calibration_n"] == 6
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    flat = " ".join(result.output.split())
    assert "[half A seed 1]" in flat  # the half's name is printed, not swallowed as rich markup
    assert "held-out" in flat and data["target"]["evaluated"]["quality"] == 1.0


def test_bad_dataset_fails_with_the_line_number(tmp_path):
    rows = [{"id": "q1", "messages": [{"role": "user", "content": "x"}], "answers": {"cheap": answer("a", True)}}]
    path = write_jsonl(tmp_path / "bad.jsonl", [HEADER, *rows])
    result = runner.invoke(app, ["replay", "run", str(path), "--models", "cheap,strong", "--threshold", "0.5"])
    assert result.exit_code == 2
    assert "bad.jsonl:2" in result.output and "strong" in result.output


def test_run_needs_a_threshold_sweep_or_target(tmp_path):
    result = runner.invoke(app, ["replay", "run", str(tmp_path / "x.jsonl"), "--models", "a,b"])
    assert result.exit_code == 2 and "--threshold" in result.output


def test_overlapping_calibration_and_evaluation_data_is_refused(tmp_path):
    rows = [{"id": f"q{i}", "messages": [{"role": "user", "content": "x"}],
             "answers": {"cheap": answer("a", True), "strong": answer("b", True)}} for i in range(3)]
    path = write_jsonl(tmp_path / "d.jsonl", [HEADER, *rows])
    result = runner.invoke(app, ["replay", "run", str(path), "--models", "cheap,strong", "--calibrate-on",
                                 str(path), "--target-quality", "0.9"])
    assert result.exit_code == 2 and "in both" in result.output


def test_unknown_convert_format_is_an_error(tmp_path):
    result = runner.invoke(app, ["replay", "convert", "--from", "helm", str(tmp_path), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and "unknown source format" in result.output


def test_budget_what_if_reports_refused_queries(tmp_path):
    rows = [{"id": f"q{i}", "messages": [{"role": "user", "content": "x"}],
             "answers": {"cheap": answer("", False), "strong": answer("b", True)}} for i in range(3)]
    path = write_jsonl(tmp_path / "d.jsonl", [HEADER, *rows])
    report = tmp_path / "b.json"
    result = runner.invoke(app, ["replay", "run", str(path), "--models", "cheap,strong", "--threshold", "0.5",
                                 "--budget", "0.01", "--json", str(report)])
    assert result.exit_code == 0, result.output
    point = json.loads(report.read_text())["operating_points"][0]
    assert point["details"]["refused"] == 3 and point["quality"] == 0.0


def test_confidence_chooses_by_the_lower_bound_and_is_reported(tmp_path):
    rows = [{"id": f"q{i}", "messages": [{"role": "user", "content": "x"}],
             "answers": {"cheap": answer("a", True, confidence=0.9), "strong": answer("b", True)}}
            for i in range(4)]
    cal = write_jsonl(tmp_path / "cal.jsonl", [HEADER, *rows])
    ev = write_jsonl(tmp_path / "ev.jsonl", [HEADER, *[{**r, "id": f"e{i}"} for i, r in enumerate(rows)]])
    report = tmp_path / "r.json"
    result = runner.invoke(app, ["replay", "run", str(ev), "--models", "cheap,strong", "--calibrate-on", str(cal),
                                 "--no-fit-calibration", "--signals", "structure,logprob", "--target-quality",
                                 "0.95", "--confidence", "0.95", "--json", str(report)])
    assert result.exit_code == 0, result.output
    target = json.loads(report.read_text())["target"]
    assert target["confidence"] == 0.95 and target["evaluated"]["quality"] == 1.0
    assert "at 95% confidence" in " ".join(result.output.split())


def test_a_bad_confidence_or_one_without_a_target_is_an_error(tmp_path):
    path = tmp_path / "x.jsonl"
    alone = runner.invoke(app, ["replay", "run", str(path), "--models", "a,b", "--sweep", "--confidence", "0.9"])
    assert alone.exit_code == 2 and "--target-quality" in alone.output
    bad = runner.invoke(app, ["replay", "run", str(path), "--models", "a,b", "--target-quality", "0.9",
                              "--calibrate-on", str(path), "--confidence", "1.5"])
    assert bad.exit_code == 2 and "confidence" in bad.output


def test_signals_all_selects_every_built_in_signal(tmp_path, monkeypatch):
    from cascadeflow.cascade.quality import BUILTIN_SIGNALS
    from cascadeflow.replay import study

    seen = []
    real = study.run_study

    async def spy(dataset, setup, **options):
        seen.append(setup.quality.signals)
        return await real(dataset, setup, **options)

    monkeypatch.setattr(study, "run_study", spy)
    rows = [{"id": f"q{i}", "messages": [{"role": "user", "content": "x"}],
             "answers": {"cheap": answer("a", True), "strong": answer("b", True)}} for i in range(2)]
    path = write_jsonl(tmp_path / "d.jsonl", [HEADER, *rows])
    result = runner.invoke(app, ["replay", "run", str(path), "--models", "cheap,strong", "--threshold", "0.5",
                                 "--signals", "all"])
    assert result.exit_code == 0, result.output
    assert seen == [BUILTIN_SIGNALS]
    bad = runner.invoke(app, ["replay", "run", str(path), "--models", "cheap,strong", "--threshold", "0.5",
                              "--signals", "structure,telepathy"])
    assert bad.exit_code == 2 and "telepathy" in bad.output
