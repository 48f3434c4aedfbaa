"""The report's formats: JSON and CSV that parse back to the same figures, a rich table, and one HTML page with
inline SVG charts, no script and nothing fetched, the log's values escaped; and `cascadeflow report`."""

from __future__ import annotations

import csv
import io
import json
from html.parser import HTMLParser

import pytest
from typer.testing import CliRunner

from cascadeflow.cli import _register, app
from cascadeflow.reports import report, to_csv, to_html, to_json
from cascadeflow.reports.render import table_text
from cascadeflow.trace.jsonl import JsonlSink
from tests.reports.factory import anomaly_record, call, fleet


@pytest.fixture
def log(tmp_path):
    sink = JsonlSink(tmp_path / "audit.jsonl")
    for record in [*fleet(), anomaly_record(),
                   call(99, day="2026-11-03", user="<script>alert(1)</script>", feature="chat", task="code",
                        action="accept")]:
        sink.write(record)
    sink.close()
    return tmp_path / "audit.jsonl"


def test_json_holds_every_row_and_the_total(log):
    rep = report(log, by="user")
    data = json.loads(to_json(rep))
    assert [row["user"] for row in data["rows"]] == [r.key[0] for r in rep.rows]
    assert data["total"]["calls"] == rep.total.calls
    assert data["rows"][0]["cost_usd"] == rep.rows[0].cost_usd
    assert data["anomalies"][0]["signal"] == "cost_rate"


def test_csv_has_a_row_per_group_and_a_total_row(log):
    rep = report(log, by=["day", "feature"])
    rows = list(csv.DictReader(io.StringIO(to_csv(rep))))
    assert len(rows) == len(rep.rows) + 1 and rows[-1]["day"] == "total"
    assert float(rows[0]["cost_usd"]) == pytest.approx(rep.rows[0].cost_usd)
    assert int(rows[-1]["calls"]) == rep.total.calls


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.links: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.links += [value for name, value in attrs if name in ("src", "href") and value]

    def handle_data(self, data):
        self.text.append(data)


def test_html_is_one_self_contained_page_with_charts(log):
    rep = report(log, by="user")
    page = Page()
    page.feed(to_html(rep, daily=report(log, by="day"), recommendations=["keep <b>this</b> escaped"]))
    assert page.tags.count("svg") == 3  # cost per user, acceptance per user, cost per day
    assert "rect" in page.tags and "polyline" in page.tags
    assert "script" not in page.tags and "b" not in page.tags  # the log's and the caller's text is escaped
    assert page.links == []  # nothing is fetched: no CDN, no stylesheet, no image
    text = "".join(page.text)
    assert "<script>alert(1)</script>" in text and "keep <b>this</b> escaped" in text
    assert "cost_rate" in text  # the anomaly events are listed


def _cli(*args: str):
    _register()
    return CliRunner().invoke(app, ["report", *args], env={"COLUMNS": "200"})


def test_cli_prints_the_table_and_writes_each_format(log, tmp_path):
    shown = _cli(str(log), "--by", "feature")
    assert shown.exit_code == 0, shown.output
    assert "chat" in shown.output and "search" in shown.output and "total" in shown.output
    for fmt in ("json", "csv", "html", "table"):
        out = tmp_path / f"report.{fmt}"
        result = _cli(str(log), "--by", "day", "-f", fmt, "-o", str(out))
        assert result.exit_code == 0, result.output
        assert "2026-11-02" in out.read_text()
    assert json.loads((tmp_path / "report.json").read_text())["by"] == ["day"]
    assert (tmp_path / "report.table").read_text() == table_text(report(log, by="day"))


def test_cli_monthly_report_lists_recommendations(log, tmp_path):
    result = _cli(str(log), "--month", "2026-11", "--budget", "0.01")
    assert result.exit_code == 0, result.output
    assert "Total queries: 62" in result.output and "of the $0.0100 budget" in result.output


def test_cli_names_a_missing_log(tmp_path):
    result = _cli(str(tmp_path / "nothing.jsonl"))
    assert result.exit_code == 2 and "no audit log matches" in result.output
