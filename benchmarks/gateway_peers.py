"""The gateway next to LiteLLM's proxy, and 0 overshoot with 4 gateway processes on one Redis ledger.

Usage:
    .venv/bin/python benchmarks/gateway_peers.py [--rounds 3] [--requests 400] [--litellm-venv /tmp/litellm-proxy-venv]
        [--contenders direct,passthrough,cascadeflow,litellm] [--baseline-src ../other-checkout/src]
    .venv/bin/python benchmarks/gateway_peers.py --fleet [--redis redis://127.0.0.1:6379/0]

Side by side: the same OpenAI-compatible API double (a starlette app in a process of its own, answering every
chat completion at once with the same body), the same load generator (aiohttp keep-alive clients in this
process, `--requests` per level and contender), concurrency 1, 16 and 64, in a new random order every round:
- direct: the load generator against the API double (the baseline every "added" figure subtracts);
- cascadeflow: `cascadeflow serve` (one process) with a virtual key (SQLite key store) whose daily budget is
  reserved and settled on the ledger for every call, and the JSONL audit log on;
- litellm: LiteLLM's proxy (`litellm --config`, one worker, no database), installed with pip in its own venv
  under /tmp on first use (never in the project's venv);
- passthrough (with `--contenders ...,passthrough`): the gateway's own server stack (uvicorn, Starlette, one
  pooled aiohttp session, the same collector tuning) forwarding each body with no key, budget, pipeline or
  audit: the floor any gateway on these libraries stands on;
- baseline (with `--baseline-src`): the same gateway served from another checkout's `src` (e.g. main's), for a
  before/after comparison in the same rounds.
`--contenders` picks a subset (direct is always run: the added latency is measured against it).
Reported per contender and level (medians over rounds): throughput, p50/p99 latency and, at concurrency 1,
p50/p99 added over direct; server CPU per request (utime+stime of the server process and its children over
the level / requests); involuntary context switches per request of the server (the times it was taken off
a CPU with work left: on a loaded machine latency then grows by waiting for a CPU, not for I/O); RSS of the
server process tree after the run.

`--fleet`: 4 gateway processes share one Redis ledger and key store; 4 x 16 clients spend one key's daily
budget until every process refuses; the ledger's spend, the audit logs' costs and the limit are compared
(overshoot = spend beyond the limit).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "Why would a Redis connection pool be exhausted right after a deploy?"
ANSWER = ("A deploy restarts every instance at once; each opens its full pool while the old ones drain theirs, "
          "so Redis briefly sees twice the usual clients and refuses new connections past maxclients.")
USAGE = {"prompt_tokens": 24, "completion_tokens": 40, "total_tokens": 64}
LEVELS = (1, 16, 64)
SECRET = "gateway-benchmark-secret"
LITELLM_MASTER_KEY = "sk-litellm-benchmark-master-key-0123456789abcdef"  # it refuses to start without one


# ---- the API double (its own process) -----------------------------------------------------------------------

def serve_double() -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def completions(request: Request) -> Response:
        body = json.loads(await request.body())
        return Response(json.dumps({
            "id": "chatcmpl-double", "object": "chat.completion", "created": 1_700_000_000, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER, "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}], "usage": USAGE}),
            media_type="application/json")

    app = Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])
    sock = socket.socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no delayed-ACK stalls on loopback
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, http="httptools",
                                  loop="uvloop")).run(sockets=[sock])


def serve_passthrough(upstream: str, port: int) -> None:
    """The floor of the gateway's stack: uvicorn (httptools, uvloop) and Starlette in front of one pooled aiohttp
    session, forwarding the body to the API double and its answer back, with no key, budget, pipeline or audit
    and the same garbage-collector tuning as `cascadeflow serve`. What a Python gateway on these libraries
    cannot go below."""
    import aiohttp
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from cascadeflow.gateway.server import tune_gc_for_serving

    sessions: list[aiohttp.ClientSession] = []

    async def completions(request: Request) -> Response:
        if not sessions:
            sessions.append(aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)))
        body = json.loads(await request.body())
        async with sessions[0].post(f"{upstream}/chat/completions", data=json.dumps(body),
                                    headers={"content-type": "application/json"}) as reply:
            answer = json.loads(await reply.read())
        return Response(json.dumps(answer), media_type="application/json")

    async def health(request: Request) -> Response:
        return Response("ok")

    app = Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"]), Route("/health", health)])
    tune_gc_for_serving()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, http="httptools",
                loop="uvloop")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen[Any], seconds: float = 120.0) -> None:
    import httpx

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


# ---- the contenders -----------------------------------------------------------------------------------------

def gateway_config(workdir: Path, double_url: str, port: int, *, ledger: str, keys: str, tag: str = "") -> Path:
    path = workdir / f"gateway{tag}.toml"
    path.write_text(f"""
[gateway]
host = "127.0.0.1"
port = {port}
ledger = "{ledger}"
keys = "{keys}"
key_secret = "{SECRET}"
audit = "{workdir / f'audit{tag}.jsonl'}"

[models.bench]
model = {{ name = "gpt-4o-mini", provider = "openai", base_url = "{double_url}", api_key = "sk-bench" }}
""")
    return path


def create_key(config: Path, *extra: str, src: Path = ROOT / "src") -> str:
    out = subprocess.run([sys.executable, "-c", "from cascadeflow.cli import main; main()", "keys", "create",
                          "bench", "--config", str(config), *extra], capture_output=True, text=True, check=True,
                         env=env_with_src(src))
    return json.loads(out.stdout)["key"]


def env_with_src(src: Path = ROOT / "src") -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def start_gateway(config: Path, src: Path = ROOT / "src") -> subprocess.Popen[Any]:
    return subprocess.Popen([sys.executable, "-c", "from cascadeflow.cli import main; main()", "serve", "--config",
                             str(config)], env=env_with_src(src), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def litellm_venv(path: Path) -> Path:
    exe = path / "bin" / "litellm"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run([str(path / "bin" / "pip"), "install", "-q", "litellm[proxy]"], check=True)
    return exe


def start_litellm(exe: Path, workdir: Path, double_url: str, port: int) -> subprocess.Popen[Any]:
    config = workdir / "litellm.yaml"
    config.write_text(f"""model_list:
  - model_name: bench
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: {double_url}
      api_key: sk-bench
litellm_settings:
  telemetry: false
general_settings:
  master_key: {LITELLM_MASTER_KEY}
""")
    env = {**os.environ, "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False", "DISABLE_SCHEMA_UPDATE": "True"}
    return subprocess.Popen([str(exe), "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
                             "--num_workers", "1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=workdir)


# ---- process figures --------------------------------------------------------------------------------------

def tree(pid: int) -> list[int]:
    pids, frontier = [pid], [pid]
    while frontier:
        parent = frontier.pop()
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        pids += [int(c) for c in children]
        frontier += [int(c) for c in children]
    return pids


def cpu_seconds(pid: int) -> float:
    total = 0
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def preemptions(pid: int) -> int:
    """Times the server process tree was taken off a CPU while it still had work (involuntary context
    switches): waiting for a CPU on a busy machine, not for I/O."""
    total = 0
    for p in tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("nonvoluntary_ctxt_switches:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def rss_mb(pid: int) -> float:
    total = 0
    for p in tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


# ---- the load generator -----------------------------------------------------------------------------------

async def load(url: str, key: str, concurrency: int, requests: int) -> tuple[float, list[float], int]:
    """(seconds, per-request latencies in ms, failures) of `requests` calls from `concurrency` clients."""
    import aiohttp

    body = json.dumps({"model": "bench", "max_tokens": 100, "messages": [{"role": "user", "content": QUESTION}]})
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    latencies: list[float] = []
    failures = 0
    left = requests
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def client() -> None:
            nonlocal left, failures
            while left > 0:
                left -= 1
                started = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers=headers) as reply:
                        await reply.read()
                        failed = reply.status != 200
                except aiohttp.ClientError:
                    failed = True
                failures += failed  # a failure counts in the latencies, not in the throughput
                latencies.append((time.perf_counter() - started) * 1000)

        for _ in range(min(20, requests)):  # warm the connections
            async with session.post(url, data=body, headers=headers) as reply:
                await reply.read()
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        return time.perf_counter() - started, latencies, failures


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def peers(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="gateway-peers-"))
    double = subprocess.Popen([sys.executable, __file__, "--serve-double"], stdout=subprocess.PIPE, text=True)
    assert double.stdout is not None
    double_url = f"http://127.0.0.1:{double.stdout.readline().strip()}/v1"
    procs: dict[str, subprocess.Popen[Any]] = {}
    urls = {"direct": f"{double_url}/chat/completions"}
    keys = {"direct": "sk-bench"}
    try:
        gateways = {"cascadeflow": ROOT / "src"} if "cascadeflow" in args.contenders else {}
        if args.baseline_src:
            gateways["baseline"] = Path(args.baseline_src).resolve()
        for name, src in gateways.items():  # each with a key store and audit log of its own
            port = free_port()
            config = gateway_config(workdir, double_url, port, ledger="memory://",
                                    keys=f"sqlite:///{workdir}/keys-{name}.db", tag=f"-{name}")
            keys[name] = create_key(config, "--per-day", "1000000", src=src)
            procs[name] = start_gateway(config, src)
            wait_http(f"http://127.0.0.1:{port}/health", procs[name])
            urls[name] = f"http://127.0.0.1:{port}/v1/chat/completions"
        if "passthrough" in args.contenders:
            pport = free_port()
            procs["passthrough"] = subprocess.Popen([sys.executable, __file__, "--serve-passthrough", double_url,
                                                     str(pport)])
            wait_http(f"http://127.0.0.1:{pport}/health", procs["passthrough"])
            urls["passthrough"] = f"http://127.0.0.1:{pport}/v1/chat/completions"
            keys["passthrough"] = "unused"
        if "litellm" in args.contenders:
            lport = free_port()
            procs["litellm"] = start_litellm(litellm_venv(Path(args.litellm_venv)), workdir, double_url, lport)
            wait_http(f"http://127.0.0.1:{lport}/health/liveliness", procs["litellm"], 300)
            urls["litellm"] = f"http://127.0.0.1:{lport}/v1/chat/completions"
            keys["litellm"] = LITELLM_MASTER_KEY
        pids = {"direct": double.pid, **{name: p.pid for name, p in procs.items()}}
        rows: dict[tuple[str, int], list[dict[str, float]]] = {}
        for round_no in range(args.rounds):
            order = [(name, level) for name in urls for level in LEVELS]
            random.shuffle(order)
            for name, level in order:
                cpu0, preempted0 = cpu_seconds(pids[name]), preemptions(pids[name])
                seconds, lat, failures = asyncio.run(load(urls[name], keys[name], level, args.requests))
                cpu = cpu_seconds(pids[name]) - cpu0
                preempted = preemptions(pids[name]) - preempted0
                rows.setdefault((name, level), []).append({
                    "failed": failures, "rps": (len(lat) - failures) / seconds, "p50": percentile(lat, 0.5), "p99": percentile(lat, 0.99),
                    "cpu_ms": cpu / len(lat) * 1000, "preempted": preempted / len(lat)})
            print(f"round {round_no + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        report(rows, {name: rss_mb(pid) for name, pid in pids.items()}, args)
    finally:
        for proc in (*procs.values(), double):
            proc.terminate()
        for proc in (*procs.values(), double):
            proc.wait(timeout=30)


def report(rows: dict[tuple[str, int], list[dict[str, float]]], rss: dict[str, float], args: argparse.Namespace) -> None:
    def med(name: str, level: int, field: str) -> float:
        return statistics.median(r[field] for r in rows[(name, level)])

    def added(name: str, field: str) -> float:  # per round: contender minus direct, then the median
        return statistics.median(c[field] - d[field] for c, d in zip(rows[(name, 1)], rows[("direct", 1)],
                                                                      strict=True))

    out: dict[str, Any] = {"date": datetime.now(UTC).strftime("%Y-%m-%d"), "load": os.getloadavg(),
                           "rounds": args.rounds, "requests": args.requests, "contenders": {}}
    names = sorted({name for name, _ in rows}, key=["direct", "passthrough", "cascadeflow", "baseline",
                                                                "litellm"].index)
    for name in names:
        entry: dict[str, Any] = {"rss_mb": round(rss[name], 1)}
        for level in LEVELS:
            entry[f"c{level}"] = {k: round(med(name, level, k), 3) for k in ("rps", "p50", "p99", "cpu_ms", "preempted")}
            entry[f"c{level}"]["failed"] = sum(int(r["failed"]) for r in rows[(name, level)])
        if name != "direct":
            entry["added_c1_ms"] = {"p50": round(added(name, "p50"), 3), "p99": round(added(name, "p99"), 3)}
        out["contenders"][name] = entry
    if "cascadeflow" in names and "litellm" in names:
        out["throughput_ratio_vs_litellm"] = {
            f"c{level}": round(med("cascadeflow", level, "rps") / med("litellm", level, "rps"), 1) for level in LEVELS}
    if "passthrough" in names and "litellm" in names:
        out["passthrough_ratio_vs_litellm"] = {
            f"c{level}": round(med("passthrough", level, "rps") / med("litellm", level, "rps"), 1) for level in LEVELS}
    if "cascadeflow" in names and "baseline" in names:  # per round, then the median: both saw the same machine
        out["cpu_ms_vs_baseline"] = {f"c{level}": round(statistics.median(
            c["cpu_ms"] / b["cpu_ms"] for c, b in zip(rows[("cascadeflow", level)], rows[("baseline", level)],
                                                       strict=True)), 3) for level in LEVELS}
    print(json.dumps(out, indent=1))


# ---- a fleet on one Redis ledger --------------------------------------------------------------------------

def fleet(args: argparse.Namespace) -> None:
    import redis

    workdir = Path(tempfile.mkdtemp(prefix="gateway-fleet-"))
    prefix = f"gwfleet{uuid.uuid4().hex[:8]}"
    url = f"{args.redis}?prefix={prefix}"
    double = subprocess.Popen([sys.executable, __file__, "--serve-double"], stdout=subprocess.PIPE, text=True)
    assert double.stdout is not None
    double_url = f"http://127.0.0.1:{double.stdout.readline().strip()}/v1"
    limit_usd = 0.02
    procs, ports = [], []
    try:
        configs = []
        for i in range(4):
            ports.append(free_port())
            configs.append(gateway_config(workdir, double_url, ports[-1], ledger=url, keys=url, tag=str(i)))
        key = create_key(configs[0], "--per-day", str(limit_usd))
        procs = [start_gateway(c) for c in configs]
        for port, proc in zip(ports, procs, strict=True):
            wait_http(f"http://127.0.0.1:{port}/health", proc)
        statuses = asyncio.run(_spend(ports, key))
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
        audited = [json.loads(line) for i in range(4)
                   for line in (workdir / f"audit{i}.jsonl").read_text().splitlines()]
        spent_records = sum(r["cost_usd"] for r in audited)
        from cascadeflow.budget import open_ledger
        from cascadeflow.budget.windows import window_key
        from cascadeflow.gateway.keys import key_id_of

        day = window_key(f"vkey:{key_id_of(key)}", "day", time.time())
        state = open_ledger(url).states([day])[day]
        print(json.dumps({"date": datetime.now(UTC).strftime("%Y-%m-%d"), "load": os.getloadavg(),
                          "processes": 4, "limit_usd": limit_usd, "answered": statuses.get(200, 0),
                          "refused_402": statuses.get(402, 0), "other": {k: v for k, v in statuses.items()
                                                                         if k not in (200, 402)},
                          "spent_by_records_usd": round(spent_records, 8),
                          "overshoot_usd": round(max(0.0, spent_records - limit_usd), 8),
                          "ledger_spent_usd": state.spent / 1e6, "ledger_reserved_usd": state.reserved / 1e6,
                          "ledger_overshoot_usd": max(0.0, state.spent / 1e6 - limit_usd)}, indent=1))
        client = redis.Redis.from_url(args.redis)
        for k in client.scan_iter(match="{" + prefix + "}:*"):
            client.delete(k)
        client.delete(f"{prefix}:keys")
    finally:
        for proc in (*procs, double):
            if proc.poll() is None:
                proc.terminate()


async def _spend(ports: list[int], key: str) -> dict[int, int]:
    import aiohttp

    body = json.dumps({"model": "bench", "max_tokens": 100, "messages": [{"role": "user", "content": QUESTION}]})
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    statuses: dict[int, int] = {}
    async with aiohttp.ClientSession() as session:
        async def client(port: int) -> None:
            refused_in_a_row = 0
            while refused_in_a_row < 5:
                async with session.post(f"http://127.0.0.1:{port}/v1/chat/completions", data=body,
                                        headers=headers) as reply:
                    await reply.read()
                statuses[reply.status] = statuses.get(reply.status, 0) + 1
                refused_in_a_row = refused_in_a_row + 1 if reply.status == 402 else 0

        await asyncio.gather(*(client(port) for port in ports for _ in range(16)))
    return statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve-double", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-passthrough", nargs=2, metavar=("UPSTREAM", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--fleet", action="store_true", help="4 gateway processes on one Redis ledger")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=400, help="requests per contender, level and round")
    parser.add_argument("--litellm-venv", default="/tmp/litellm-proxy-venv")
    parser.add_argument("--contenders", default="direct,cascadeflow,litellm", type=lambda v: set(v.split(",")),
                        help="comma-separated subset of direct,cascadeflow,litellm,passthrough (direct is always "
                             "run; passthrough: the same server stack with no pipeline, the floor of the stack)")
    parser.add_argument("--baseline-src", help="also serve the gateway from this source tree (a before/after "
                                               "comparison in the same rounds)")
    args = parser.parse_args()
    if args.serve_double:
        serve_double()
    elif args.serve_passthrough:
        serve_passthrough(args.serve_passthrough[0], int(args.serve_passthrough[1]))
    elif args.fleet:
        fleet(args)
    else:
        peers(args)


if __name__ == "__main__":
    main()
