"""`make demo` end to end on the embedded model: a small storm, a budget that runs out, the queue drained."""

from __future__ import annotations

import asyncio
import json

import pytest

from apps.incident_response import demo
from cascadeflow.trace import iter_records


@pytest.mark.local_model
def test_storm_is_answered_budgeted_queued_drained_and_audited(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    out = tmp_path / "demo"
    code = asyncio.run(demo.main(["--alerts", "5", "--max-tokens", "24", "--budget", "0.0009",
                                  "--max-cycles", "8", "--out", str(out)]))
    assert code == 0
    printed = capsys.readouterr().out
    assert "queued" in printed and "cycle 2" in printed  # the budget ran out and a later cycle drained
    records = list(iter_records(out / "audit.jsonl"))
    answered = {r["alert_id"] for r in records if r.get("model_selected")}
    alerts = {a["id"] for a in json.loads((demo.HERE / "data" / "alerts.json").read_text())[:5]}
    assert answered == alerts  # nothing accepted was lost: every alert was answered in some cycle
    assert all(r["price_version"].startswith("genai-prices") for r in records)
    assert "queue after" in printed and "0 alert(s) waiting" in printed
