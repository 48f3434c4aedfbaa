"""`make demo`, the incident storm, end to end: scripted models for the budget mechanics (fast, any
machine), the embedded model once for real. What is asserted holds at any machine speed: every incident
ends investigated (on the storm's day or drained from the queue later) or still queued, no day spends
above its budget, one audit record per model answer, each priced from its tokens."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections import defaultdict
from pathlib import Path

import pytest

from cascadeflow import DeferredQueue, PriceBook, Usage, open_ledger
from cascadeflow.testing import ScriptedProvider
from cascadeflow.trace import iter_records
from cascadeflow_incidents import demo
from cascadeflow_incidents.intake import find_scenarios, load_scenario
from cascadeflow_incidents.investigation import Investigator
from cascadeflow_incidents.memory import MemoryStore
from cascadeflow_incidents.web import DataDir
from cascadeflow_incidents.web.overview import budget_view, incident_rows, scenario_rows

from .samples import SCENARIOS

REPLY = "ROOT_CAUSE: something failed\nCATEGORY: unknown_category"


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _options(tmp_path: Path, **kw) -> demo.StormOptions:
    return demo.StormOptions(data_dir=tmp_path / "data", **kw)


def _budgets(options: demo.StormOptions) -> tuple[float, float]:
    _, strong, _ = demo.models_for(options, {}, PriceBook())
    return demo.budgets(options, strong, PriceBook())


def _scripted_storm(options: demo.StormOptions) -> demo.StormSummary:
    provider = ScriptedProvider(default=REPLY)
    return asyncio.run(demo.run_storm(options, {}, resolve_provider=provider.resolver()))


def _assert_nothing_lost(summary, data: Path) -> None:
    """Every incident ends investigated or still queued; an investigated incident was investigated once."""
    assert summary.investigated + summary.still_queued == summary.incidents
    assert summary.drained <= summary.queued
    investigated = [i for d in summary.days for i in d.investigated]
    assert len(investigated) == len(set(investigated)) == summary.investigated
    last = {row["incident_id"]: row for row in _lines(data / "incidents.jsonl")}
    assert len(last) == summary.incidents
    assert sorted(i for i, row in last.items() if row["status"] == "resolved") == sorted(investigated)
    waiting = {item.payload["incident_id"] for item in DeferredQueue(data / "queue.sqlite").list()}
    assert waiting == {i for i, row in last.items() if row["status"] == "queued"}
    assert len(waiting) == summary.still_queued


def _assert_days_within_budget(summary, data: Path) -> None:
    ledger = open_ledger(f"sqlite:///{data / 'budget.sqlite'}")
    for day in summary.days:
        state = ledger.state(f"global:day:{day.day}")
        assert state.spent <= round(day.limit_usd * 1_000_000) and state.reserved == 0
        assert abs(state.spent / 1_000_000 - day.spent_usd) < 1e-9


def _assert_audit_matches_the_investigations(summary, data: Path) -> None:
    records = list(iter_records(data / "audit.jsonl"))
    assert len(records) == summary.audit_records == summary.model_answers
    events = _lines(data / "events.jsonl")
    by_investigation = defaultdict(list)
    for event in events:
        by_investigation[event["investigation_id"]].append(event)
    for investigation, stream in by_investigation.items():
        assert [e["seq"] for e in stream] == list(range(1, len(stream) + 1))
        assert stream[0]["type"] == "investigation_started" and stream[-1]["type"] == "investigation_finished"
        cost = next(e for e in stream if e["type"] == "cost")["total_usd"]
        audited = sum(r["cost_usd"] for r in records if r["metadata"]["investigation"] == investigation)
        assert cost == pytest.approx(audited, abs=1e-12)  # the cost panel adds up to the audit trail
    assert summary.premium_usd >= summary.cost_usd > 0


def test_a_storm_that_overflows_the_day_is_queued_and_drained_with_nothing_lost(tmp_path) -> None:
    per_investigation, _ = _budgets(_options(tmp_path))
    options = _options(tmp_path, daily_budget=per_investigation * 1.5)  # a day affords one, rarely two
    summary = _scripted_storm(options)
    data = options.data_dir
    assert summary.queued > 0 and len(summary.days) > 1 and summary.drained > 0
    assert summary.still_queued == 0 and summary.investigated == summary.incidents
    _assert_nothing_lost(summary, data)
    _assert_days_within_budget(summary, data)
    _assert_audit_matches_the_investigations(summary, data)
    # queued in severity order, drained in that order
    order = [i for d in summary.days for i in d.investigated]
    assert order.index(summary.days[1].investigated[0]) > order.index(summary.days[0].investigated[-1])
    run = json.loads((data / "run.json").read_text())
    assert run["budget_day"] == summary.days[0].day and run["finished_at"] >= run["started_at"]
    assert run["budget_days"] == [d.day for d in summary.days]  # the budget page shows every one of them
    shown = budget_view(DataDir(data), {})["days"]
    assert [(d["day"], d["spent_usd"]) for d in shown] == [(d.day, pytest.approx(d.spent_usd)) for d in summary.days]
    assert run["daily_budget_usd"] == pytest.approx(options.daily_budget)
    written = json.loads((data / "summary.json").read_text())
    assert {k: v for k, v in written.items() if k != "wall_seconds"} == json.loads(json.dumps(summary.to_dict()))
    memory = MemoryStore(data / "memory.sqlite", read_only=True)
    written_back = [r for r in memory.all() if r.source.startswith("investigation ")]
    assert len(written_back) == summary.investigated
    memory.close()


def test_a_later_incident_recalls_what_an_earlier_one_wrote_back(tmp_path) -> None:
    options = _options(tmp_path, concurrency=1)
    _scripted_storm(options)
    events = _lines(options.data_dir / "events.jsonl")
    finished = [e["investigation_id"] for e in events if e["type"] == "investigation_finished"]
    recalled = {(e["investigation_id"], e["incident_id"]) for e in events if e["type"] == "memory_hit"}
    written = {r.source.removeprefix("investigation "): r.id
               for r in MemoryStore(options.data_dir / "memory.sqlite", read_only=True).all()}
    # the same scenario in a second cluster finds the first cluster's incident among its memories
    pairs = [(a, b) for a in finished for b in finished
             if a != b and a.split(".")[0] == b.split(".")[0] and finished.index(a) < finished.index(b)]
    assert pairs and all((b, written[a]) in recalled for a, b in pairs)


def test_after_the_storm_the_app_offers_no_replayed_scenario_as_not_yet_investigated(tmp_path) -> None:
    options = _options(tmp_path, clusters=1)
    _scripted_storm(options)
    data = DataDir(options.data_dir)
    rows = incident_rows(data.read_incidents(), {})
    scenarios = demo.load_scenarios()
    # the storm's alerts carry a cluster label: no incident has a scenario's own fingerprint
    assert not {s.alert.fingerprint for s in scenarios} & {r["fingerprint"] for r in rows}
    assert {r["scenario"] for r in rows} == {s.scenario_id for s in scenarios}
    assert scenario_rows(SCENARIOS, rows) == []


def test_a_day_too_small_for_one_investigation_sends_nothing_and_keeps_every_incident(tmp_path) -> None:
    per_investigation, _ = _budgets(_options(tmp_path))
    options = _options(tmp_path, daily_budget=per_investigation / 2, max_days=2)
    summary = _scripted_storm(options)
    assert summary.investigated == 0 and summary.audit_records == 0
    assert summary.still_queued == summary.queued == summary.incidents
    _assert_nothing_lost(summary, options.data_dir)


def test_a_failed_investigation_stays_queued_and_is_retried_on_a_later_day(tmp_path, monkeypatch) -> None:
    real = Investigator.investigate
    failed: list[str] = []

    async def fails_once(self, alert, toolbox, *, log=None):
        if not failed:
            failed.append(log.investigation_id)
            raise OSError("evidence store unreachable")
        return await real(self, alert, toolbox, log=log)

    monkeypatch.setattr(Investigator, "investigate", fails_once)
    options = _options(tmp_path, clusters=1)
    summary = _scripted_storm(options)
    assert summary.still_queued == 0 and summary.investigated == summary.incidents
    assert failed[0] in summary.days[1].investigated and failed[0] in summary.days[0].failed
    rows = [r for r in _lines(options.data_dir / "incidents.jsonl") if r["incident_id"] == failed[0]]
    assert [r["status"] for r in rows] == ["received", "investigating", "failed", "queued", "investigating",
                                           "resolved"]
    retry = rows[-1]["investigation_id"]  # a stream and a budget session of its own
    assert retry != rows[1]["investigation_id"] and retry.startswith(failed[0])
    assert {e["investigation_id"] for e in _lines(options.data_dir / "events.jsonl")} >= {retry}
    _assert_audit_matches_the_investigations(summary, options.data_dir)


def test_the_data_directory_is_reset_but_other_files_are_kept(tmp_path) -> None:
    options = _options(tmp_path, clusters=1)
    options.data_dir.mkdir(parents=True)
    (options.data_dir / "notes.txt").write_text("mine")
    first = _scripted_storm(options)
    second = _scripted_storm(options)
    assert (options.data_dir / "notes.txt").read_text() == "mine"
    assert second.audit_records == first.audit_records  # not appended to the first run's log
    received = [r for r in _lines(options.data_dir / "incidents.jsonl") if r["status"] == "received"]
    assert len(received) == second.incidents


def test_main_says_where_everything_went_and_fails_while_incidents_are_still_queued(tmp_path, capsys) -> None:
    data = tmp_path / "data"
    provider = ScriptedProvider(default=REPLY)
    code = asyncio.run(demo.main(["--data-dir", str(data), "--clusters", "1"], environ={},
                                 resolve_provider=provider.resolver()))
    printed = capsys.readouterr().out
    assert code == 0 and f"data directory: {data}" in printed and "make serve" in printed
    snapshot = data / "dashboard.html"
    assert f"dashboard snapshot: {snapshot}" in printed
    page = snapshot.read_text()  # one file: nothing fetched from anywhere, every incident on it
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=.(https?:)?//", page)
    assert all(i in page for i in json.loads((data / "summary.json").read_text())["days"][0]["investigated"])
    code = asyncio.run(demo.main(["--data-dir", str(data), "--clusters", "1", "--daily-budget", "0.000001",
                                  "--max-days", "2"], environ={}, resolve_provider=provider.resolver()))
    assert code == 1 and "still queued" in capsys.readouterr().out


def test_with_a_key_the_storm_runs_on_the_real_models_over_their_wire_format(tmp_path, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[3] / "tests"))  # the loopback hosts
    from loopback import LoopbackServer, Reply

    server = LoopbackServer().start()
    try:
        server.openai.default = Reply(text=REPLY, usage={"input": 300, "output": 12})
        for name, *_ in demo.CLOUD_MODELS:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-loopback")
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai.base_url)
        options = _options(tmp_path, clusters=1)
        summary = asyncio.run(demo.run_storm(options))
    finally:
        server.stop()
    _, cheap, strong = next(pair for pair in demo.CLOUD_MODELS if pair[0] == "OPENAI_API_KEY")
    sent = {request.json["model"] for request in server.openai.requests}
    assert sent == {cheap.split("/")[1], strong.split("/")[1]}
    assert summary.still_queued == 0 and summary.investigated == summary.incidents
    assert len(server.openai.requests) == summary.calls  # every attempt of every audited call reached the host
    _assert_nothing_lost(summary, options.data_dir)
    _assert_days_within_budget(summary, options.data_dir)
    _assert_audit_matches_the_investigations(summary, options.data_dir)


@pytest.mark.parametrize("argv, words", [(["--cheap", "groq/a"], "go together"),
                                         (["--cheap", "a", "--strong", "groq/b"], "'provider/model'")])
def test_bad_model_options_stop_before_anything_runs(argv, words, capsys) -> None:
    with pytest.raises(SystemExit):
        demo.parse_options(argv)
    assert words in capsys.readouterr().err


def test_a_key_picks_real_models_and_the_embedded_tiers_are_priced_per_token() -> None:
    book = PriceBook()
    cheap, strong, label = demo.models_for(demo.StormOptions(), {"OPENAI_API_KEY": "x"}, book)
    assert (cheap.provider, strong.provider) == ("openai", "openai") and "OPENAI_API_KEY" in label
    cheap, strong, label = demo.models_for(demo.StormOptions(cheap="groq/a", strong="groq/b"), {}, book)
    assert (cheap.id, strong.id) == ("groq/a", "groq/b")
    cheap, strong, _ = demo.models_for(demo.StormOptions(), {}, book)
    for local, (_, *cloud) in zip((cheap, strong), [demo.CLOUD_MODELS[0][:2], demo.CLOUD_MODELS[0][::2]],
                                  strict=True):
        assert local.provider == "local" and book.rates(local).compute_per_hour is None
        assert book.rates(local).output == book.rates(cloud[-1]).output


def _one_scenario_per_severity(into: Path) -> Path:
    """A copy of the first sample scenario of each severity: every plan (strong, cascade, cheap) answers at
    least once, with fewer incidents for a real model to investigate."""
    first: dict[str, Path] = {}
    for folder in find_scenarios(SCENARIOS):
        first.setdefault(load_scenario(folder).alert.severity, folder)
    for folder in first.values():
        shutil.copytree(folder, into / folder.name)
    return into


@pytest.mark.local_model
def test_the_storm_on_the_embedded_model_holds_its_invariants_at_any_machine_speed(tmp_path, capsys) -> None:
    scenarios = _one_scenario_per_severity(tmp_path / "scenarios")
    per_investigation, _ = _budgets(_options(tmp_path, max_tokens=16))
    options = _options(tmp_path, scenarios=scenarios, clusters=1, max_tokens=16,
                       daily_budget=per_investigation * 1.5, max_days=8)
    summary = asyncio.run(demo.run_storm(options, {}))
    assert "incident storm" in capsys.readouterr().out
    assert summary.incidents == len(find_scenarios(scenarios)) > 1 and summary.still_queued == 0
    assert summary.queued > 0 and summary.drained == summary.queued
    _assert_nothing_lost(summary, options.data_dir)
    _assert_days_within_budget(summary, options.data_dir)
    _assert_audit_matches_the_investigations(summary, options.data_dir)
    book = PriceBook()
    cheap, strong, _ = demo.models_for(options, {}, book)
    configs = {cheap.id: cheap, strong.id: strong}
    for record in iter_records(options.data_dir / "audit.jsonl"):
        assert record["price_version"].startswith("genai-prices")
        for attempt in record["tiers"]:  # priced by its tokens at the declared rates, not by machine time
            usage = Usage(input_tokens=attempt["input_tokens"], output_tokens=attempt["output_tokens"])
            assert attempt["cost_usd"] == pytest.approx(float(book.cost(configs[attempt["model"]], usage)))


def _all_premium_shown(text: str) -> list[str]:
    """Every all-premium figure a page or the terminal shows, as printed."""
    return re.findall(r"all-premium[^$]*?\$(\d+\.\d{6})", text)


def test_the_terminal_and_the_dashboard_show_one_all_premium_figure_and_every_budget_day(tmp_path, capsys) -> None:
    data = tmp_path / "data"
    per_investigation, _ = _budgets(_options(tmp_path))
    provider = ScriptedProvider(default=REPLY)
    asyncio.run(demo.main(["--data-dir", str(data), "--clusters", "1", "--daily-budget", str(per_investigation * 1.5)],
                          environ={}, resolve_provider=provider.resolver()))
    printed = capsys.readouterr().out
    summary = json.loads((data / "summary.json").read_text())
    severities = {row["alert"]["severity"] for row in _lines(data / "incidents.jsonl")}
    assert len(severities) > 1  # plans of every kind answered, each priced at the run's one premium model
    terminal = _all_premium_shown(printed)
    assert terminal and terminal[0] == f"{summary['premium_usd']:.6f}"
    page = (data / "dashboard.html").read_text()
    shown = re.search(r'id="all-summary">(.*?)</tbody>', page, re.DOTALL)
    assert shown and _all_premium_shown(shown.group(1)) == [terminal[0]]
    costs = [e["all_premium_usd"] for e in _lines(data / "events.jsonl") if e["type"] == "cost"]
    assert sum(costs) == pytest.approx(summary["premium_usd"], rel=1e-9)
    budget = re.search(r'<section class="snapshot-page" id="budget">(.*?)</section>', page, re.DOTALL)
    days = summary["days"]
    assert len(days) > 1 and budget
    for day in days:  # each budget day the storm spent on, with its spend
        assert re.search(rf"<td>{day['day']}</td><td class=\"num\">\${day['spent_usd']:.6f}", budget.group(1))
