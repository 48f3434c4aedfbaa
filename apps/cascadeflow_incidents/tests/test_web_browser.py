"""The pages in a real browser (Debian's headless Chromium, driven by Playwright) against the app served by
uvicorn on a loopback port: an investigation started from the page streams in, its cost panel equals the
audit trail, the memory panel shows the recalled incident, a dropped connection resumes without loss or
repeats, hostile alert text and model output stay text, and the snapshot opens from disk."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx

from cascadeflow_incidents.web.audit_view import audit_records, audit_total
from cascadeflow_incidents.web.snapshot import write_snapshot

from .test_web_api import _alertmanager
from .web_support import (
    GOOD,
    REMEMBERED,
    TOKEN,
    CuttableProxy,
    LiveServer,
    chromium_page,
    scripted_services,
    sign_in,
)

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _seqs(page) -> list[int]:
    return [int(s) for s in page.eval_on_selector_all("ol[data-stream] li", "els => els.map(e => e.dataset.seq)")]


def _journal(services, investigation: str) -> list[dict]:
    return [e for e in services.data.read_events() if e["investigation_id"] == investigation]


def test_starting_an_investigation_from_the_page_streams_its_events_and_the_analysis(tmp_path: Path) -> None:
    services = scripted_services(tmp_path / "data", delay=0.4)
    with LiveServer(services) as server, chromium_page() as page:
        sign_in(page, server.url)
        page.click("tr:has-text('checkout-web crash looping') button:has-text('Start Agent Investigation')")
        page.wait_for_url(re.compile(r".*/investigations/[0-9a-f]+$"))
        top = "() => [document.querySelector('[data-analysis]').getBoundingClientRect().top, window.scrollY]"
        placed = page.evaluate(top)
        page.wait_for_selector("ol[data-stream][data-stream-ended=true]")
        assert page.evaluate(top) == placed  # the page did not move while the stream and the panel filled
        investigation = page.url.rsplit("/", 1)[1]
        journal = _journal(services, investigation)
        assert _seqs(page) == [e["seq"] for e in journal] and len(journal) > 10
        selections = page.locator("ol[data-stream] li.model:has-text('[MODEL_SELECTION]')")
        assert selections.count() == 2
        assert "openai/strong (strong tier)" in selections.nth(1).inner_text()
        assert "escalate to the strong tier" in selections.nth(1).inner_text()
        assert page.inner_text("[data-category]") == "code_defect"
        assert "KeyError" in page.inner_text("[data-root-cause]")
        link = page.locator("[data-findings] .evidence a").first
        target = link.get_attribute("href")
        assert target and page.locator(target).count() == 1  # every cited evidence points at a stream line


def test_the_cost_panel_total_equals_the_audit_logs_total(tmp_path: Path) -> None:
    services = scripted_services(tmp_path / "data", delay=0.2)
    with LiveServer(services) as server, chromium_page() as page:
        started = httpx.post(server.url + "/api/investigations", json={"scenario_id": "crash-defect"}, headers=AUTH)
        investigation = started.json()["investigation_id"]
        page.goto(f"{server.url}/investigations/{investigation}")
        page.wait_for_selector("[data-analysis-body] [data-category]")
        panel_total = page.inner_text(f"#inv-{investigation}-summary tr:has-text('total') td")
        from cascadeflow_incidents.web.audit_view import AuditQuery

        audited = audit_total(audit_records(services.data, AuditQuery(incident=investigation)))
        assert panel_total == f"${audited:.6f}" and audited > 0
        page.click("text=audit trail")
        assert page.inner_text("[data-audit-total]") == panel_total


def test_the_memory_panel_shows_the_recalled_incident(tmp_path: Path) -> None:
    services = scripted_services(tmp_path / "data")
    with LiveServer(services) as server, chromium_page() as page:
        httpx.post(server.url + "/api/investigations", json={"scenario_id": "crash-defect"}, headers=AUTH)
        server.wait_idle()
        page.goto(server.url + "/")
        memory = page.inner_text("#live-memory")
        assert REMEMBERED.id in memory and REMEMBERED.root_cause in memory
        for _ in range(page.locator("tr[data-nav]").count() - page.locator("#incidents tr[data-nav]").count() + 1):
            page.keyboard.press("j")  # down the scenarios left to the first incident
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r".*/investigations/[0-9a-f]+$"))
        assert page.locator(f"ol[data-stream] li.memory:has-text('recalled {REMEMBERED.id}')").count() == 1


def test_a_dropped_connection_resumes_with_no_event_lost_or_repeated(tmp_path: Path) -> None:
    services = scripted_services(tmp_path / "data", delay=2.5)  # each model call leaves a pause mid-stream
    with LiveServer(services) as server, CuttableProxy(server.port) as proxy, chromium_page() as page:
        started = httpx.post(server.url + "/api/investigations", json={"scenario_id": "crash-defect"}, headers=AUTH)
        investigation = started.json()["investigation_id"]
        page.goto(f"{proxy.url}/investigations/{investigation}")
        rendered = int(page.get_attribute("ol[data-stream]", "data-last-seq") or 0)
        # an event has arrived over the stream (not only in the page as rendered), and more are to come
        page.wait_for_function(f"() => Number(document.querySelector('ol[data-stream]').dataset.lastSeq) > {rendered}")
        before = _seqs(page)
        assert page.get_attribute("ol[data-stream]", "data-stream-ended") is None
        proxy.cut()
        page.wait_for_selector("ol[data-stream][data-stream-ended=true]", timeout=60_000)
        journal = _journal(services, investigation)
        assert _seqs(page) == [e["seq"] for e in journal] and len(journal) > len(before)
        resumed = [r for r in proxy.requests if b"/events" in r and b"last-event-id:" in r.lower()]
        assert resumed, "the browser did not reconnect with Last-Event-ID"


def test_html_in_an_alert_and_in_model_output_renders_as_text(tmp_path: Path) -> None:
    hostile_model = "ROOT_CAUSE: nothing\nCATEGORY: <img/src=x/onerror=window.pwned=3>"
    services = scripted_services(tmp_path / "data", delay=0.5, reply=lambda request: (
        hostile_model if request.metadata.get("task_type") == "complex_reasoning" else GOOD))
    hostile_alert = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
    with LiveServer(services) as server, chromium_page() as page:
        body = httpx.post(server.url + "/api/alerts/alertmanager", json=_alertmanager(hostile_alert), headers=AUTH)
        investigation = body.json()["incidents"][0]["investigation_id"]
        page.goto(f"{server.url}/investigations/{investigation}")  # the model's reply arrives over the stream
        page.wait_for_selector("ol[data-stream][data-stream-ended=true]")
        assert page.evaluate("window.pwned") is None
        assert hostile_alert in page.inner_text("h1")
        stream_text = page.inner_text("ol[data-stream]")
        assert "<img/src=x/onerror=window.pwned=3>" in stream_text, stream_text
        assert page.locator("main img, main script").count() == 0
        page.goto(server.url + "/")
        assert hostile_alert in page.inner_text("#incidents") and page.evaluate("window.pwned") is None


def test_the_snapshot_opens_from_disk_without_a_server(tmp_path: Path) -> None:
    services = scripted_services(tmp_path / "data")
    with LiveServer(services) as server:
        investigation = httpx.post(server.url + "/api/investigations", json={"scenario_id": "crash-defect"},
                                   headers=AUTH).json()["investigation_id"]
        server.wait_idle()
    out = write_snapshot(services.data.root, tmp_path / "snapshot.html")
    html = out.read_text()
    assert not re.search(r'(src|href)="(/|https?:)', html), "the snapshot must not load anything"
    with chromium_page() as page:
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(out.as_uri())
        assert all(url.startswith("file:") for url in requests)
        assert page.locator(f"#inv-{investigation} ol[data-stream] li").count() == len(_journal(services, investigation))
        page.click(f"a[href='#inv-{investigation}']")
        assert page.inner_text(f"#inv-{investigation} [data-category]") == "code_defect"
        embedded = json.loads(page.inner_text("#snapshot-data"))
        assert investigation in embedded["events"]
