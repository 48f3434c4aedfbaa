"""Alert-storm benchmark: N concurrent calls against an OpenAI-compatible host (its own process) that answers
every request after 20 ms.

Paths, each in its own process, storms of 1, 10, 100, 1,000 and 5,000 concurrent calls, then ten storms of
1,000 in the same process:
  bare   aiohttp.ClientSession (64 connections) posting the same body: the floor of the host and the client
  httpx, httpx-aiohttp   bare httpx.AsyncClient (64 connections, a semaphore of 64 in front) on its own
         transport, and on aiohttp's through httpx-aiohttp (the transport cascadeflow uses)
  agent  CascadeAgent.run with two tiers whose drafts are accepted
  flow   CascadeFlow.acomplete with a SQLite ledger (a daily budget: every call reserves and settles)
  sdk    the openai SDK's AsyncOpenAI.chat.completions.create, instrumented by cascadeflow.init("observe")
  sdk-aiohttp  the same, the client built with http_client=openai.DefaultAioHttpClient() (the SDK's aiohttp
         transport; the SDK's own pool is not cascadeflow's)
Three unmeasured warm-up calls first. Per storm: wall time, errors, process CPU per call (user + system, every
thread), p99 of the calls' latency.

    .venv/bin/python benchmarks/storm.py [--paths bare,agent,flow,sdk] [--sizes 1,10,100,1000,5000]
                                         [--repeat 10] [--repeat-size 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ANSWER = json.dumps({
    "id": "chatcmpl-storm", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                 "message": {"role": "assistant", "content": "Disk full on db-1: rotate the logs, then restart."}}],
    "usage": {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52},
}).encode()
QUERY = "Alert: disk usage 97% on db-1. What first?"


def serve(port: int) -> None:
    """The host: every POST is answered after 20 ms (uvicorn, one process)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    async def chat(request):
        await request.body()
        await asyncio.sleep(0.02)
        return Response(ANSWER, media_type="application/json", headers={"x-request-id": "req_storm"})

    app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, backlog=16384)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the storm host did not start on port {port}")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def storm(size: int, one: Callable[[], Awaitable[object]]) -> dict:
    async def timed() -> float:
        start = time.perf_counter()
        await one()
        return time.perf_counter() - start

    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    results = await asyncio.gather(*(timed() for _ in range(size)), return_exceptions=True)
    wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
    errors = [r for r in results if isinstance(r, BaseException)]
    latencies = sorted(r for r in results if not isinstance(r, BaseException))
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else float("nan")
    return {"size": size, "wall_s": round(wall, 3), "errors": len(errors),
            "first_error": f"{type(errors[0]).__name__}: {errors[0]}"[:200] if errors else None,
            "cpu_ms_per_call": round(cpu / size * 1000, 3), "p99_ms": round(p99 * 1000, 1)}


def bare_httpx(base_url: str, *, over_aiohttp: bool) -> Callable[[], Awaitable[object]]:
    """httpx.AsyncClient with 64 connections and a semaphore of 64 in front (so nothing waits in its pool),
    on its own transport or on aiohttp's (httpx-aiohttp)."""
    import httpx

    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    holder: dict[str, object] = {}
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": QUERY}], "max_tokens": 100}

    async def call() -> object:
        if "c" not in holder:
            transport = None
            if over_aiohttp:
                from httpx_aiohttp import AiohttpTransport

                transport = AiohttpTransport(limits=limits)
            holder["c"] = httpx.AsyncClient(limits=limits, transport=transport, timeout=600)
            holder["s"] = asyncio.Semaphore(64)
        async with holder["s"]:  # type: ignore[attr-defined]
            response = await holder["c"].post(f"{base_url}/chat/completions", json=body)  # type: ignore[attr-defined]
            response.raise_for_status()
            return response.json()

    async def close() -> None:
        if "c" in holder:
            await holder["c"].aclose()  # type: ignore[attr-defined]

    call.close = close  # type: ignore[attr-defined]
    return call


def make_call(path: str, base_url: str, workdir: Path) -> Callable[[], Awaitable[object]]:
    if path == "bare":
        import aiohttp

        holder: dict[str, aiohttp.ClientSession] = {}
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": QUERY}], "max_tokens": 100}

        async def bare() -> object:
            session = holder.get("s")
            if session is None:
                session = holder["s"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
            async with session.post(f"{base_url}/chat/completions", json=body) as response:
                response.raise_for_status()
                return await response.json()

        async def close() -> None:
            if "s" in holder:
                await holder["s"].close()

        bare.close = close  # type: ignore[attr-defined]
        return bare
    if path in ("httpx", "httpx-aiohttp"):
        return bare_httpx(base_url, over_aiohttp=path == "httpx-aiohttp")
    from cascadeflow import CascadeAgent, CascadeFlow, ModelConfig, QualityConfig

    cheap = ModelConfig(name="gpt-4o-mini", provider="openai", base_url=base_url, api_key="sk-storm")
    strong = ModelConfig(name="gpt-4o", provider="openai", base_url=base_url, api_key="sk-storm")
    if path == "agent":
        agent = CascadeAgent(models=[cheap, strong], quality_config=QualityConfig(threshold=0.0))
        return lambda: agent.run(QUERY, max_tokens=100)
    if path == "flow":
        from cascadeflow.budget import BudgetConfig

        flow = CascadeFlow(ledger=f"sqlite:///{workdir / 'ledger.db'}",
                           budget_config=BudgetConfig(daily_limit=1_000_000.0))
        return lambda: flow.acomplete(model=cheap, messages=QUERY, max_tokens=100)
    if path in ("sdk", "sdk-aiohttp"):
        import openai

        import cascadeflow

        cascadeflow.init(mode="observe")
        http_client = openai.DefaultAioHttpClient(timeout=600) if path == "sdk-aiohttp" else None
        client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-storm", max_retries=0, timeout=600,
                                    http_client=http_client)
        return lambda: client.chat.completions.create(model="gpt-4o-mini", max_tokens=100,
                                                      messages=[{"role": "user", "content": QUERY}])
    raise SystemExit(f"unknown path {path!r}")


async def run_path(path: str, base_url: str, sizes: list[int], repeat: int, repeat_size: int) -> list[dict]:
    workdir = Path(tempfile.mkdtemp(prefix="storm-"))
    os.chdir(workdir)  # the default audit log goes here, not into the repository
    one = make_call(path, base_url, workdir)
    for _ in range(3):  # warm-up, not measured: imports, price data, connections
        await one()
    rows = []
    for size in sizes:
        rows.append({"path": path, "kind": "sweep", **await storm(size, one)})
        print(json.dumps(rows[-1]), flush=True)
    for i in range(repeat):
        rows.append({"path": path, "kind": f"repeat{i + 1}", **await storm(repeat_size, one)})
        print(json.dumps(rows[-1]), flush=True)
    close = getattr(one, "close", None)
    if close is not None:
        await close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--paths", default="bare,agent,flow,sdk")
    parser.add_argument("--sizes", default="1,10,100,1000,5000")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--repeat-size", type=int, default=1000)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.serve:
        serve(args.serve)
        return
    if args.path:
        asyncio.run(run_path(args.path, args.base_url, sizes, args.repeat, args.repeat_size))
        return
    port = free_port()
    host = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        wait_for(port)
        for path in args.paths.split(","):
            subprocess.run([sys.executable, os.path.abspath(__file__), "--path", path, "--base-url",
                            f"http://127.0.0.1:{port}/v1", "--sizes", args.sizes, "--repeat", str(args.repeat),
                            "--repeat-size", str(args.repeat_size)], check=True)
    finally:
        host.terminate()
        host.wait(timeout=10)


if __name__ == "__main__":
    main()
