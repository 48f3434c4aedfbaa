"""The IncidentOS web app under measurement, served by uvicorn in its own process on loopback:

1. alert -> first event: from the Alertmanager webhook POST to the first event read by an SSE client;
2. stream throughput: events per second delivered over SSE with 10 investigations running at once (and
   whether any client saw a gap or a repeat);
3. page weight: bytes of each page's HTML plus its stylesheet and script, and of the one-file snapshot;
4. read endpoints: p50/p99 latency under a bounded load (`--concurrency` clients, `--requests` each).

Investigations run analyzers-only (`--plan none`) over the recorded scenarios, so the figures measure the
app (intake, investigation loop, journal, stream, pages), not a model.

    python benchmarks/web_serving.py [--alerts 30] [--requests 200] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "apps/cascadeflow_incidents/data/scenarios"


def start_server(data: Path, token: str) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "CASCADEFLOW_INCIDENTS_API_TOKEN": token, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT / 'apps'}",
           "CASCADEFLOW_INCIDENTS_MAX_CONCURRENT": "16"}
    process = subprocess.Popen([sys.executable, "-m", "cascadeflow_incidents.web", "--data", str(data),
                                "--scenarios", str(SCENARIOS), "--port", "0", "--plan", "none"],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
    if not match:
        process.kill()
        raise RuntimeError(f"the server did not start: {line!r}")
    return process, match.group(1)


def alertmanager(scenario: str) -> dict:
    alert = json.loads((SCENARIOS / scenario / "alert.json").read_text())
    return {"version": "4", "status": "firing", "receiver": "bench", "commonLabels": alert["commonLabels"],
            "commonAnnotations": alert["commonAnnotations"],
            "alerts": [{"status": "firing", "labels": alert["commonLabels"], "annotations": alert["commonAnnotations"]}]}


async def read_stream(client: httpx.AsyncClient, investigation: str, *, first_only: bool = False) -> list[int]:
    seqs: list[int] = []
    async with client.stream("GET", f"/api/investigations/{investigation}/events") as stream:
        async for line in stream.aiter_lines():
            if line.startswith("id:"):
                seqs.append(int(line[3:].strip()))
                if first_only:
                    break
    return seqs


async def alert_to_first_event(client: httpx.AsyncClient, auth: dict, n: int) -> list[float]:
    """The crash-looping alert posted n times, one after another (each waits for the previous to end)."""
    timings = []
    for _ in range(n):
        started = time.perf_counter()
        body = (await client.post("/api/alerts/alertmanager", json=alertmanager("crash-defect"), headers=auth)).json()
        investigation = body["incidents"][0]["investigation_id"]
        await read_stream(client, investigation, first_only=True)
        timings.append((time.perf_counter() - started) * 1000)
        while (await client.get(f"/api/investigations/{investigation}/status")).json()["running"]:
            await asyncio.sleep(0.02)
    return timings


async def stream_throughput(client: httpx.AsyncClient, auth: dict, investigations: int = 10) -> dict:
    scenarios = sorted(p.name for p in SCENARIOS.iterdir() if (p / "alert.json").is_file())
    started = time.perf_counter()
    ids = []
    for i in range(investigations):
        body = (await client.post("/api/investigations", json={"scenario_id": scenarios[i % len(scenarios)]},
                                  headers=auth)).json()
        ids.append(body["investigation_id"])
    streams = await asyncio.gather(*(read_stream(client, i) for i in ids))
    elapsed = time.perf_counter() - started
    events = sum(len(s) for s in streams)
    intact = all(s == list(range(1, len(s) + 1)) for s in streams)
    return {"investigations": investigations, "events": events, "seconds": elapsed, "per_second": events / elapsed,
            "intact": intact}


async def page_weights(client: httpx.AsyncClient, investigation: str, data: Path) -> dict[str, int]:
    assets = 0
    for name in ("app.css", "stream.js"):
        assets += len((await client.get(f"/static/{name}")).content)
    weights = {}
    for name, path in (("incidents", "/"), ("investigation", f"/investigations/{investigation}"),
                       ("memory", "/memory"), ("budget", "/budget"), ("audit", "/audit")):
        weights[name] = len((await client.get(path)).content) + assets
    sys.path.insert(0, str(ROOT / "apps"))
    from cascadeflow_incidents.web.snapshot import write_snapshot

    weights["snapshot (all pages, one file)"] = write_snapshot(data, data.parent / "snapshot.html").stat().st_size
    return weights


async def read_latency(client: httpx.AsyncClient, investigation: str, requests: int, concurrency: int
                       ) -> dict[str, tuple[float, float]]:
    endpoints = ["/api/incidents", f"/api/investigations/{investigation}", "/api/budget", "/api/queue",
                 f"/api/audit?incident={investigation}", "/api/memory/insights", "/healthz"]
    out = {}
    for endpoint in endpoints:
        timings: list[float] = []
        gate = asyncio.Semaphore(concurrency)

        async def one(path: str = endpoint, gate: asyncio.Semaphore = gate, timings: list[float] = timings) -> None:
            async with gate:
                t = time.perf_counter()
                response = await client.get(path)
                timings.append((time.perf_counter() - t) * 1000)
                response.raise_for_status()

        await asyncio.gather(*(one() for _ in range(requests)))
        timings.sort()
        out[endpoint.split("?")[0]] = (statistics.median(timings), timings[int(len(timings) * 0.99) - 1])
    return out


async def run(args: argparse.Namespace) -> None:
    token = secrets.token_urlsafe(16)
    data = Path(tempfile.mkdtemp(prefix="incidentos-bench-")) / "data"
    process, base = start_server(data, token)
    auth = {"Authorization": f"Bearer {token}"}
    try:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
            first = await alert_to_first_event(client, auth, args.alerts)
            print(f"alert -> first SSE event: p50 {statistics.median(first):.1f} ms, "
                  f"max {max(first):.1f} ms over {len(first)} alerts")
            burst = await stream_throughput(client, auth)
            print(f"stream: {burst['events']} events from {burst['investigations']} concurrent investigations in "
                  f"{burst['seconds']:.2f} s = {burst['per_second']:.0f} events/s; every stream gap-free and "
                  f"repeat-free: {burst['intact']}")
            rows = (await client.get("/api/incidents")).json()["incidents"]
            investigation = next(r["investigation_id"] for r in rows if r["investigation_id"])
            for name, size in (await page_weights(client, investigation, data)).items():
                print(f"page weight {name}: {size / 1024:.1f} KiB")
            for endpoint, (p50, p99) in (await read_latency(client, investigation, args.requests,
                                                            args.concurrency)).items():
                print(f"GET {endpoint}: p50 {p50:.1f} ms, p99 {p99:.1f} ms ({args.requests} requests, "
                      f"{args.concurrency} concurrent; {len(rows)} incidents in the directory)")
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=30)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    asyncio.run(run(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
