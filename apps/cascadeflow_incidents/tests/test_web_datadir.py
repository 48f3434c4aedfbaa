"""The data directory's files: events and incident states appended as JSON lines and read back (a torn
last line skipped, the last state of an incident winning), the run description written whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from cascadeflow import BudgetConfig, open_ledger
from cascadeflow.budget import charges_for
from cascadeflow_incidents import events as ev
from cascadeflow_incidents.web.datadir import DataDir
from cascadeflow_incidents.web.overview import budget_view, incident_rows, scenario_rows

from .samples import SCENARIOS


def test_events_append_as_their_dicts_and_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "d").mkdir()
    log = ev.EventLog("inv-1")
    data.append_event(log.emit(ev.TaskClassified, task="investigate", reason="firing P1 alert"))
    data.append_event(log.emit(ev.PlanMade, loop=1, tools=("list_pods",), reason="first round"))
    with data.events.open("a") as handle:
        handle.write('{"type": "finding", "investigation_id": "inv-1", "se')  # a writer killed mid-line
    read = data.read_events()
    assert [e["seq"] for e in read] == [1, 2] and read[1]["tools"] == ["list_pods"]
    assert read[0] == {**log.events[0].to_dict()}


def test_the_last_state_of_an_incident_wins_and_keeps_when_it_was_first_seen(tmp_path: Path) -> None:
    data = DataDir(tmp_path)
    alert = {"name": "KubePodCrashLooping", "severity": "P0", "title": "crash"}
    data.append_incident("INC-1", "queued", alert, reason="budget", at=100.0)
    data.append_incident("INC-2", "received", alert, at=150.0)
    data.append_incident("INC-1", "investigating", alert, investigation_id="abc", at=200.0)
    current = data.read_incidents()
    assert list(current) == ["INC-1", "INC-2"]
    assert current["INC-1"]["status"] == "investigating" and current["INC-1"]["first_at"] == 100.0
    with pytest.raises(ValueError, match="status must be one of"):
        data.append_incident("INC-3", "done", alert)


def test_the_run_description_is_rewritten_whole(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "run")
    assert data.read_run() == {}
    data.write_run(label="storm", plan="embedded", daily_budget_usd=0.5, budget_day="2026-12-07", started_at=1.0)
    data.write_run(label="storm", plan="embedded", daily_budget_usd=0.5, budget_day="2026-12-07", started_at=1.0,
                   finished_at=2.0)
    assert data.read_run()["finished_at"] == 2.0 and not list(tmp_path.glob("run/*.tmp"))
    assert data.read_run()["budget_days"] == ["2026-12-07"]  # one day unless the run names more
    assert data.ledger_url == f"sqlite:///{tmp_path / 'run' / 'budget.sqlite'}"


DAY = 86_400


def _spend_on_days(data: DataDir, daily: float, spends: dict[float, int]) -> None:
    """Charge `micro` USD to the day's budget of each moment in `spends`, as a run's calls would."""
    ledger = open_ledger(data.ledger_url)
    try:
        for moment, micro in spends.items():
            charges = charges_for(BudgetConfig(daily_limit=daily), now=moment)
            ledger.reserve(f"call-{moment}", charges, micro, 60)
            ledger.settle(f"call-{moment}", micro)
    finally:
        ledger.close()


def test_the_budget_view_shows_every_day_the_run_spent_on(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "run").mkdir()
    first = 1_796_601_600.0  # a midnight, UTC
    _spend_on_days(data, 1.0, {first + 60: 300_000, first + DAY + 60: 200_000, first + 2 * DAY + 60: 50_000})
    days = ["2026-12-07", "2026-12-08", "2026-12-09"]
    data.write_run(label="storm", plan="severity", daily_budget_usd=1.0, budget_day=days[0], budget_days=days)
    view = budget_view(data, {})
    assert [d["day"] for d in view["days"]] == days
    assert [d["spent_usd"] for d in view["days"]] == pytest.approx([0.3, 0.2, 0.05])
    assert [d["share"] for d in view["days"]] == pytest.approx([0.3, 0.2, 0.05])
    assert view["day"] == days[0] and view["spent_usd"] == pytest.approx(0.3)  # the run's own day, as before


def test_a_run_description_without_the_list_of_days_still_shows_its_day(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "run").mkdir()
    first = 1_796_601_600.0
    _spend_on_days(data, 1.0, {first + 60: 300_000})
    data.run.write_text('{"label": "old", "plan": "embedded", "daily_budget_usd": 1.0, "budget_day": "2026-12-07"}')
    view = budget_view(data, {})
    assert [(d["day"], d["spent_usd"]) for d in view["days"]] == [("2026-12-07", pytest.approx(0.3))]


def test_a_scenario_replayed_with_other_labels_is_matched_by_its_name_not_its_fingerprint(tmp_path: Path) -> None:
    names = sorted(p.name for p in SCENARIOS.iterdir() if (p / "alert.json").exists())
    data = DataDir(tmp_path)
    replayed = {"name": "Replayed", "severity": "P1", "fingerprint": "not-the-scenarios-own"}
    data.append_incident("INC-1", "resolved", replayed, investigation_id="inv-1", scenario=names[0])
    data.append_incident("INC-2", "received", replayed)  # no scenario named: nothing is matched by it
    assert "scenario" not in data.read_incidents()["INC-2"]
    left = [s["scenario_id"] for s in scenario_rows(SCENARIOS, incident_rows(data.read_incidents(), {}))]
    assert set(left) == set(names[1:])


def test_a_fresh_data_directory_offers_the_shipped_sample_scenarios(tmp_path: Path) -> None:
    from cascadeflow_incidents.web.settings import IncidentWebSettings

    fresh = IncidentWebSettings(data_dir=tmp_path / "fresh")
    assert fresh.scenario_root().resolve() == SCENARIOS.resolve()
    own = tmp_path / "own"
    (own / "scenarios").mkdir(parents=True)
    assert IncidentWebSettings(data_dir=own).scenario_root() == own / "scenarios"
    chosen = tmp_path / "chosen"
    assert IncidentWebSettings(data_dir=own, scenarios_dir=chosen).scenario_root() == chosen
