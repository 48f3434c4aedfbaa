"""Screenshots of each IncidentOS page (docs/img/web-*.png), taken in Debian's headless Chromium.

Without --data it makes its own data directory first: the live app (embedded model, offline) investigates
the recorded scenarios one after another through its API, writing each finished one back to the memory,
so later investigations recall earlier ones. With --data it photographs that directory (e.g. what
`make demo` wrote), read-only.

    python benchmarks/web_screenshots.py [--data DIR] [--scenarios DIR] [--out docs/img]
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "apps"))

from pydantic import SecretStr

from cascadeflow_incidents.web.app import create_app
from cascadeflow_incidents.web.settings import IncidentWebSettings

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]


class Served:
    def __init__(self, settings: IncidentWebSettings):
        import uvicorn

        self.app = create_app(settings)
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def investigate_all(base: str, token: str) -> str:
    """The scenarios in turn, least severe first, each finished one written back to the memory (so the most
    severe, last, recalls the others); one is left for the "Start Agent Investigation" button. Returns the
    last investigation."""
    auth = {"Authorization": f"Bearer {token}"}
    last = ""
    for scenario in httpx.get(f"{base}/api/incidents").json()["scenarios"][::-1][1:]:
        started = httpx.post(f"{base}/api/investigations", json={"scenario_id": scenario["scenario_id"]},
                             headers=auth).json()
        last = started["investigation_id"]
        while httpx.get(f"{base}/api/investigations/{last}/status").json()["running"]:
            time.sleep(0.5)
        analysis = httpx.get(f"{base}/api/investigations/{last}").json()["analysis"]
        httpx.post(f"{base}/api/memory", headers=auth, json={
            "title": scenario["title"], "symptoms": scenario["title"], "root_cause": analysis["root_cause"],
            "category": analysis["category"], "remediation": "; ".join(analysis["remediation"]) or "none needed",
            "services": [scenario["service"]], "fix_worked": True})
    return last


def shoot(base: str, investigation: str, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    pages = {"incidents": "/", "investigation": f"/investigations/{investigation}", "memory": "/memory",
             "budget": "/budget", "audit": "/audit"}
    written = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        for name, path in pages.items():
            page.goto(base + path)
            if name == "investigation":  # the stream box shows where the models were chosen
                page.locator("ol[data-stream] li.model").first.scroll_into_view_if_needed()
            target = out / f"web-{name}.png"
            page.screenshot(path=str(target), full_page=False)
            written.append(target)
        browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="photograph this data directory instead of making one")
    parser.add_argument("--scenarios", default=str(ROOT / "apps/cascadeflow_incidents/data/scenarios"))
    parser.add_argument("--out", default=str(ROOT / "docs/img"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(16)
    data = Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="incidentos-"))
    settings = IncidentWebSettings(data_dir=data, scenarios_dir=Path(args.scenarios), api_token=SecretStr(token),
                                   plan="embedded", max_concurrent=1, auto_investigate=not args.data)
    with Served(settings) as base:
        if args.data:
            rows = httpx.get(f"{base}/api/incidents").json()["incidents"]
            investigation = next(r["investigation_id"] for r in rows if r["investigation_id"])
        else:
            investigation = investigate_all(base, token)
        for path in shoot(base, investigation, out):
            print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
