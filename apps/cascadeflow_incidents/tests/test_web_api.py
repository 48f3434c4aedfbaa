"""The web app's HTTP API over a real data directory, with scripted models: alert intake and its shared
secret, the API token on every write endpoint, the SSE stream's resume, the audit trail's filters and
exports, the budget and the queue, and that no secret reaches a page or an event."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from cascadeflow_incidents.web.app import create_app
from cascadeflow_incidents.web.datadir import DataDir
from cascadeflow_incidents.web.snapshot import write_snapshot

from .web_support import REMEMBERED, SCENARIOS, TOKEN, scripted_services

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _alertmanager(summary: str | None = None, status: str = "firing") -> dict:
    """The crash-defect scenario's alert as an Alertmanager webhook (same labels, so the same fingerprint)."""
    scenario = json.loads((SCENARIOS / "crash-defect" / "alert.json").read_text())
    notes = dict(scenario["commonAnnotations"])
    if summary is not None:
        notes["summary"] = summary
    return {"version": "4", "status": status, "receiver": "incidents", "groupLabels": {},
            "commonLabels": scenario["commonLabels"], "commonAnnotations": notes,
            "alerts": [{"status": status, "labels": scenario["commonLabels"], "annotations": notes,
                        "startsAt": "2026-12-07T02:00:00Z"}]}


@pytest.fixture
async def app_client(tmp_path: Path, request: pytest.FixtureRequest):
    services = scripted_services(tmp_path / "data", delay=getattr(request, "param", 0.0))
    app = create_app(services=services)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://incidents.test")
    async with app.router.lifespan_context(app), client:
        yield client, services


async def _investigate(client: httpx.AsyncClient, services) -> str:
    response = await client.post("/api/investigations", json={"scenario_id": "crash-defect"}, headers=AUTH)
    assert response.status_code == 202, response.text
    investigation = response.json()["investigation_id"]
    await services.runner.wait()
    return investigation


async def _sse(client: httpx.AsyncClient, investigation: str, headers: dict | None = None,
               params: dict | None = None) -> list[dict]:
    messages, current = [], {}
    async with client.stream("GET", f"/api/investigations/{investigation}/events", headers=headers or {},
                             params=params or {}) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        async for line in stream.aiter_lines():
            if not line:
                if current:
                    messages.append(current)
                current = {}
            elif not line.startswith(":") and ":" in line:
                key, _, value = line.partition(":")
                current[key] = value.strip()
    return messages


async def test_a_started_scenario_is_recorded_on_its_incident_and_leaves_the_scenario_list(app_client) -> None:
    client, services = app_client
    before = (await client.get("/")).text
    await _investigate(client, services)
    lines = [json.loads(line) for line in services.data.incidents.read_text().splitlines()]
    assert lines and all(line["scenario"] == "crash-defect" for line in lines)
    after = (await client.get("/")).text
    assert 'value="crash-defect"' in before and 'value="crash-defect"' not in after


async def test_alert_intake_refuses_a_missing_or_wrong_secret_and_accepts_bearer_or_basic(app_client) -> None:
    client, _ = app_client
    payload = _alertmanager()
    assert (await client.post("/api/alerts/alertmanager", json=payload)).status_code == 401
    wrong = {"Authorization": "Bearer not-the-secret"}
    assert (await client.post("/api/alerts/alertmanager", json=payload, headers=wrong)).status_code == 401
    basic = {"Authorization": "Basic " + base64.b64encode(f"grafana:{TOKEN}".encode()).decode()}
    grafana = {**payload, "orgId": 1, "title": "[FIRING:1] crash", "state": "alerting"}
    accepted = await client.post("/api/alerts/grafana", json=grafana, headers=basic)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["incidents"][0]["status"] == "investigating"


@pytest.mark.parametrize("app_client", [0.3], indirect=True)  # model calls take a moment: the alert repeats meanwhile
async def test_a_firing_alert_with_recorded_evidence_is_investigated_and_a_duplicate_joins_it(app_client) -> None:
    client, services = app_client
    first = (await client.post("/api/alerts/alertmanager", json=_alertmanager(), headers=AUTH)).json()["incidents"][0]
    again = (await client.post("/api/alerts/alertmanager", json=_alertmanager(), headers=AUTH)).json()["incidents"][0]
    assert first["investigation_id"] and again["incident_id"] == first["incident_id"]
    assert again["investigation_id"] is None and "duplicate" in again["reason"]
    await services.runner.wait()
    state = DataDir(services.data.root).read_incidents()[first["incident_id"]]
    assert state["status"] == "resolved" and state["investigation_id"] == first["investigation_id"]


async def test_an_alert_without_any_evidence_source_is_kept_as_received_not_guessed_at(app_client) -> None:
    client, services = app_client
    payload = _alertmanager()
    payload["alerts"][0]["labels"] = {"alertname": "DiskFull", "severity": "warning", "service": "elsewhere"}
    body = (await client.post("/api/alerts/alertmanager", json=payload, headers=AUTH)).json()["incidents"][0]
    assert body["status"] == "received" and "no evidence source" in body["reason"]
    assert not services.runner.tasks


@pytest.mark.parametrize(("method", "path", "body"), [
    ("post", "/api/investigations", {"scenario_id": "crash-defect"}),
    ("post", "/api/memory", {"title": "t", "symptoms": "s", "root_cause": "r", "category": "c", "remediation": "x"}),
    ("post", "/api/queue/drain", None),
    ("post", "/api/investigations/none/cancel", None),
])
async def test_every_write_endpoint_needs_the_api_token(app_client, method: str, path: str, body) -> None:
    client, _ = app_client
    assert (await client.request(method, path, json=body)).status_code == 401
    assert (await client.request(method, path, json=body, headers={"Authorization": "Bearer nope"})).status_code == 401


async def test_a_browser_signs_in_with_the_token_and_its_cookie_is_not_the_token(app_client) -> None:
    client, _ = app_client
    refused = await client.post("/session", data={"token": "wrong"})
    assert refused.status_code == 401
    signed = await client.post("/session", data={"token": TOKEN, "next": "https://elsewhere.example/"})
    assert signed.status_code == 303 and signed.headers["location"] == "/"
    cookie = signed.cookies.get("cf_incidents_session")
    assert cookie and TOKEN not in cookie
    started = await client.post("/investigations", data={"scenario_id": "crash-defect"},
                                headers={"Origin": "http://incidents.test"})
    assert started.status_code == 303 and started.headers["location"].startswith("/investigations/")
    cross = await client.post("/investigations", data={"scenario_id": "crash-defect"},
                              headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403


async def test_the_stream_resumes_after_last_event_id_with_nothing_lost_or_repeated(app_client) -> None:
    client, services = app_client
    investigation = await _investigate(client, services)
    everything = await _sse(client, investigation)
    seqs = [int(m["id"]) for m in everything if m.get("event") == "investigation"]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) > 10
    assert everything[-1]["event"] == "end"
    cut = seqs[len(seqs) // 2]
    resumed = await _sse(client, investigation, headers={"Last-Event-ID": str(cut)}, params={"after": 2})
    assert [int(m["id"]) for m in resumed if m.get("event") == "investigation"] == seqs[cut:]
    first = json.loads(next(m for m in everything if m.get("event") == "investigation")["data"])
    assert first["line"]["tag"] == "INVESTIGATION_STARTED" and first["event"]["seq"] == 1


async def test_model_selection_events_name_the_model_the_tier_and_why(app_client) -> None:
    client, services = app_client
    investigation = await _investigate(client, services)
    body = (await client.get(f"/api/investigations/{investigation}")).json()
    selections = [e for e in body["events"] if e["type"] == "model_selection"]
    assert [s["model"] for s in selections] == ["openai/cheap", "openai/strong"]
    assert all(s["reason"] and s["tier"] in ("cheap", "strong") for s in selections)
    assert body["analysis"]["category"] == "code_defect" and body["analysis"]["confidence"]["validated_by"]


async def test_the_cost_panel_adds_up_to_the_audit_trail_of_the_investigation(app_client) -> None:
    client, services = app_client
    investigation = await _investigate(client, services)
    await _investigate(client, services)  # another investigation's records must not count
    cost = (await client.get(f"/api/investigations/{investigation}")).json()["cost"]
    audit = (await client.get("/api/audit", params={"incident": investigation})).json()
    assert cost["final"] and audit["count"] == sum(cost["calls_by_tier"].values())
    assert audit["total_usd"] == pytest.approx(cost["total_usd"], abs=1e-12) and cost["total_usd"] > 0
    assert cost["all_premium_usd"] > cost["total_usd"] / 2  # priced at the strong model's rates
    assert sum(cost["by_task"].values()) == pytest.approx(cost["total_usd"])


async def test_the_audit_trail_filters_and_exports_as_jsonl_and_csv(app_client) -> None:
    client, services = app_client
    investigation = await _investigate(client, services)
    strong = (await client.get("/api/audit", params={"model": "openai/strong"})).json()
    assert strong["count"] == 1 and strong["records"][0]["model_selected"] == "openai/strong"
    assert (await client.get("/api/audit", params={"since": "2999-01-01T00:00:00Z"})).json()["count"] == 0
    assert (await client.get("/api/audit", params={"since": "yesterday"})).status_code == 422
    lines = (await client.get("/api/audit.jsonl", params={"incident": investigation})).text.splitlines()
    assert len(lines) == 2 and all(json.loads(x)["metadata"]["investigation"] == investigation for x in lines)
    rows = list(csv.DictReader(io.StringIO((await client.get("/api/audit.csv")).text)))
    assert len(rows) == 2 and {r["task_type"] for r in rows} == {"complex_reasoning", "root_cause_review"}


async def test_memory_search_insights_and_write_back(app_client) -> None:
    client, _ = app_client
    found = (await client.get("/api/memory", params={"q": "checkout-web pods crash looping"})).json()
    assert found["results"][0]["id"] == REMEMBERED.id
    added = await client.post("/api/memory", headers=AUTH, json={
        "title": "checkout-web crashed again", "symptoms": "CrashLoopBackOff", "root_cause": "a KeyError",
        "category": "code_defect", "remediation": "roll back", "services": ["checkout-web"]})
    assert added.status_code == 201
    insights = (await client.get("/api/memory/insights")).json()["insights"]
    assert any(REMEMBERED.id in i["incidents"] and added.json()["id"] in i["incidents"] for i in insights)


async def test_an_alert_the_days_budget_cannot_fit_waits_in_the_queue(tmp_path: Path) -> None:
    services = scripted_services(tmp_path / "data", daily_budget_usd=0.01, budget_usd=0.05)
    app = create_app(services=services)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    async with app.router.lifespan_context(app), client:
        body = (await client.post("/api/alerts/alertmanager", json=_alertmanager(), headers=AUTH)).json()
        assert body["incidents"][0]["status"] == "queued"
        items = (await client.get("/api/queue")).json()["items"]
        assert len(items) == 1 and "day's budget" in items[0]["reason"]
        drained = (await client.post("/api/queue/drain", headers=AUTH)).json()
        assert drained["started"] == [] and drained["queued"] == 1
        page = await client.get("/budget")
        assert "checkout-web crash looping" in page.text or "Pod checkout-web" in page.text


async def test_no_secret_reaches_a_page_an_event_or_the_openapi_document(app_client) -> None:
    client, services = app_client
    investigation = await _investigate(client, services)
    pages = ["/", f"/investigations/{investigation}", "/memory", "/budget", "/audit", "/openapi.json",
             f"/api/investigations/{investigation}", "/api/budget", "/metrics"]
    for path in pages:
        response = await client.get(path)
        assert response.status_code == 200, path
        assert TOKEN not in response.text, path
    assert TOKEN not in services.data.events.read_text()
    assert TOKEN not in services.data.incidents.read_text()


async def test_pages_escape_html_from_alerts(app_client) -> None:
    client, services = app_client
    hostile = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">'
    body = (await client.post("/api/alerts/alertmanager", json=_alertmanager(hostile), headers=AUTH)).json()
    await services.runner.wait()
    for path in ("/", f"/investigations/{body['incidents'][0]['investigation_id']}"):
        html = (await client.get(path)).text
        assert "<script>window.pwned" not in html and "&lt;script&gt;window.pwned=1&lt;/script&gt;" in html


async def test_metrics_health_and_openapi(app_client) -> None:
    client, services = app_client
    await _investigate(client, services)
    metrics = (await client.get("/metrics")).text
    assert "cascadeflow_query_total" in metrics and 'task_type="root_cause_review"' in metrics
    assert (await client.get("/healthz")).json()["ok"] is True
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "/api/investigations/{investigation_id}/events" in paths and "/api/alerts/alertmanager" in paths


async def test_cancelling_a_running_investigation_marks_the_incident(tmp_path: Path) -> None:
    services = scripted_services(tmp_path / "data", delay=5.0)
    app = create_app(services=services)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    async with app.router.lifespan_context(app), client:
        started = (await client.post("/api/investigations", json={"scenario_id": "crash-defect"},
                                     headers=AUTH)).json()
        investigation = started["investigation_id"]
        assert (await client.get(f"/api/investigations/{investigation}/status")).json()["running"]
        assert (await client.post(f"/api/investigations/{investigation}/cancel", headers=AUTH)).status_code == 200
        await services.runner.wait()
        state = services.data.read_incidents()[started["incident_id"]]
        assert state["status"] == "failed" and "cancelled" in state["reason"]
        assert (await client.post(f"/api/investigations/{investigation}/cancel", headers=AUTH)).status_code == 409


async def test_the_snapshot_is_one_file_with_everything_inline_and_alert_text_escaped(app_client, tmp_path: Path) -> None:
    client, services = app_client
    hostile = "<script>window.pwned=1</script>"
    body = (await client.post("/api/alerts/alertmanager", json=_alertmanager(hostile), headers=AUTH)).json()
    await services.runner.wait()
    html = write_snapshot(services.data.root, tmp_path / "out" / "incidentos.html").read_text()
    investigation = body["incidents"][0]["investigation_id"]
    assert f'id="inv-{investigation}"' in html and "<style>" in html and "EventSource" in html
    assert hostile not in html and "&lt;script&gt;window.pwned=1&lt;/script&gt;" in html
    assert "\\u003cscript\\u003ewindow.pwned" in html  # the embedded JSON escapes it too
    assert TOKEN not in html


def test_the_serve_entry_point_prints_its_loopback_url_and_serves_the_pages(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": f"{root / 'src'}{os.pathsep}{root / 'apps'}"}
    env.pop("CASCADEFLOW_INCIDENTS_API_TOKEN", None)
    process = subprocess.Popen([sys.executable, "-m", "cascadeflow_incidents.web", "--data", str(tmp_path / "d"),
                                "--scenarios", str(SCENARIOS), "--port", "0", "--plan", "none"],
                               cwd=root, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = re.search(r"(http://127\.0\.0\.1:\d+)/", process.stdout.readline())
        token = process.stdout.readline().rsplit(": ", 1)[-1].strip()
        assert url and token, "the URL and this run's token are printed"
        page = httpx.get(url.group(1) + "/", timeout=30)
        assert page.status_code == 200 and "Start Agent Investigation" in page.text and token not in page.text
        assert httpx.post(url.group(1) + "/api/investigations", json={"scenario_id": "crash-defect"},
                          headers={"Authorization": f"Bearer {token}"}, timeout=30).status_code == 202
    finally:
        process.terminate()
        process.wait(timeout=30)
