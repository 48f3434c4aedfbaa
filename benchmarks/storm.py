"""Alert-storm benchmark: N concurrent calls against an OpenAI-compatible host (its own process) that answers
every request after 20 ms.

Each path runs in its own process (a fresh process per path, three unmeasured warm-up calls first); the
storms are interleaved across the paths in one sitting (storm of size N on every path, then the next size),
so a figure and the bare client's next to it saw the same machine load. Storms of 1, 10, 100, 1,000 and
5,000 concurrent calls, then ten storms of 1,000 in the same processes:
  bare   aiohttp.ClientSession (64 connections) posting the same body: the floor of the host and the client,
         and what the adapters' HTTP layer sends through
  httpx, httpx-aiohttp   bare httpx.AsyncClient (64 connections, a semaphore of 64 in front) on its own
         transport, and on aiohttp's through httpx-aiohttp (needs httpx-aiohttp installed)
  httpx-aiohttp-direct   the httpx-aiohttp transport without a client in front (what the adapters did
         before they called aiohttp directly)
  agent  CascadeAgent.run with two tiers whose drafts are accepted
  flow   CascadeFlow.acomplete with a SQLite ledger (a daily budget: every call reserves and settles)
  flow-inline  the same with the ledger called on the event loop instead of in worker threads
  sdk    the openai SDK's AsyncOpenAI.chat.completions.create, instrumented by cascadeflow.init("observe")
         (admitted through the provider's gate: 64 in flight)
  sdk-aiohttp  the same, the client built with http_client=openai.DefaultAioHttpClient()
  sdk-plain    the openai SDK alone (no cascadeflow.init): the floor of the instrumented path
Per storm: wall time, errors, process CPU per call (user + system, every thread), p99 of the calls' latency,
and the ratios of wall time and CPU per call to the bare client's in the same round (when `bare` runs).

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


def bare_httpx(base_url: str, *, over_aiohttp: bool, direct: bool = False) -> Callable[[], Awaitable[object]]:
    """httpx.AsyncClient with 64 connections and a semaphore of 64 in front (so nothing waits in its pool),
    on its own transport or on aiohttp's (httpx-aiohttp); `direct`: no client, each httpx.Request handed to
    the httpx-aiohttp transport itself (what cascadeflow's HTTP layer did before it called aiohttp)."""
    import httpx

    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    holder: dict[str, object] = {}
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": QUERY}], "max_tokens": 100}
    url = httpx.URL(f"{base_url}/chat/completions")
    timeout = {"timeout": httpx.Timeout(600).as_dict()}

    async def call() -> object:
        if "c" not in holder:
            transport = None
            if over_aiohttp:
                from httpx_aiohttp import AiohttpTransport

                transport = AiohttpTransport(limits=limits)
            holder["t"] = transport
            holder["c"] = httpx.AsyncClient(limits=limits, transport=transport, timeout=600)
            holder["s"] = asyncio.Semaphore(64)
        async with holder["s"]:  # type: ignore[attr-defined]
            if direct:
                request = httpx.Request("POST", url, content=json.dumps(body).encode(), extensions=timeout,
                                        headers={"content-type": "application/json"})
                response = await holder["t"].handle_async_request(request)  # type: ignore[attr-defined]
                await response.aread()
            else:
                response = await holder["c"].post(url, json=body)  # type: ignore[attr-defined]
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
    if path in ("httpx", "httpx-aiohttp", "httpx-aiohttp-direct"):
        return bare_httpx(base_url, over_aiohttp=path != "httpx", direct=path == "httpx-aiohttp-direct")
    from cascadeflow import CascadeAgent, CascadeFlow, ModelConfig, QualityConfig

    cheap = ModelConfig(name="gpt-4o-mini", provider="openai", base_url=base_url, api_key="sk-storm")
    strong = ModelConfig(name="gpt-4o", provider="openai", base_url=base_url, api_key="sk-storm")
    if path == "agent":
        agent = CascadeAgent(models=[cheap, strong], quality_config=QualityConfig(threshold=0.0))
        return lambda: agent.run(QUERY, max_tokens=100)
    if path in ("flow", "flow-inline"):
        from cascadeflow.budget import BudgetConfig

        flow = CascadeFlow(ledger=f"sqlite:///{workdir / 'ledger.db'}",
                           budget_config=BudgetConfig(daily_limit=1_000_000.0))
        if path == "flow-inline":  # the ledger called on the event loop, as before it ran in worker threads
            flow.runtime.ledger.blocks = False  # type: ignore[union-attr]
        return lambda: flow.acomplete(model=cheap, messages=QUERY, max_tokens=100)
    if path in ("sdk", "sdk-aiohttp", "sdk-plain"):
        import openai

        import cascadeflow

        if path != "sdk-plain":  # sdk-plain: the SDK alone, the floor of the instrumented path
            cascadeflow.init(mode="observe")
        http_client = openai.DefaultAioHttpClient(timeout=600) if path == "sdk-aiohttp" else None
        client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-storm", max_retries=0, timeout=600,
                                    http_client=http_client)
        return lambda: client.chat.completions.create(model="gpt-4o-mini", max_tokens=100,
                                                      messages=[{"role": "user", "content": QUERY}])
    raise SystemExit(f"unknown path {path!r}")


async def serve_storms(path: str, base_url: str) -> None:
    """A worker: warm up, then run one storm per size read from stdin, answering one JSON line each."""
    workdir = Path(tempfile.mkdtemp(prefix="storm-"))
    os.chdir(workdir)  # the default audit log goes here, not into the repository
    one = make_call(path, base_url, workdir)
    for _ in range(3):  # warm-up, not measured: imports, price data, connections
        await one()
    loop = asyncio.get_running_loop()
    print(json.dumps({"ready": path}), flush=True)
    while line := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
        print(json.dumps({"path": path, **await storm(int(line), one)}), flush=True)
    close = getattr(one, "close", None)
    if close is not None:
        await close()


def interleaved(paths: list[str], base_url: str, rounds: list[tuple[str, int]]) -> None:
    """One worker process per path; each round runs its storm on every path in turn."""
    workers = {path: subprocess.Popen([sys.executable, os.path.abspath(__file__), "--path", path, "--base-url",
                                       base_url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
               for path in paths}
    try:
        for worker in workers.values():
            json.loads(worker.stdout.readline())  # type: ignore[union-attr]  # ready
        for kind, size in rounds:
            bare = None
            for path, worker in workers.items():
                worker.stdin.write(f"{size}\n")  # type: ignore[union-attr]
                worker.stdin.flush()  # type: ignore[union-attr]
                row = {"kind": kind, **json.loads(worker.stdout.readline())}  # type: ignore[union-attr]
                if path == "bare":
                    bare = row
                elif bare is not None:
                    row["wall_vs_bare"] = round(row["wall_s"] / bare["wall_s"], 2)
                    row["cpu_vs_bare"] = round(row["cpu_ms_per_call"] / bare["cpu_ms_per_call"], 2)
                print(json.dumps(row), flush=True)
    finally:
        for worker in workers.values():
            worker.stdin.close()  # type: ignore[union-attr]
            worker.wait(timeout=60)


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
    if args.serve:
        serve(args.serve)
        return
    if args.path:
        asyncio.run(serve_storms(args.path, args.base_url))
        return
    rounds = [("sweep", int(s)) for s in args.sizes.split(",") if s]
    rounds += [(f"repeat{i + 1}", args.repeat_size) for i in range(args.repeat)]
    port = free_port()
    host = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        wait_for(port)
        interleaved(args.paths.split(","), f"http://127.0.0.1:{port}/v1", rounds)
    finally:
        host.terminate()
        host.wait(timeout=10)


if __name__ == "__main__":
    main()
