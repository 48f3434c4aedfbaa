"""Per-call overhead next to its peers: raw HTTP, cascadeflow, the cascadeflow 1.2.0 package and LiteLLM.

Usage: .venv/bin/python benchmarks/overhead_peers.py [--rounds 40] [--block 20] [--out bench-output]

Every contender calls the same OpenAI-compatible API double, a small starlette server in a process of its
own that answers every chat completion at once with the same body. Each contender runs in a worker process
of its own (the peers in their own venvs under <out>/peers/, which this script creates with pip on first
use), so the packages never share an interpreter. The workers take turns in blocks of `--block` calls, in
a new random order every round, so a noisy stretch of the machine hits every contender alike.

Two paths, each against its own baseline:
- cascade: a two-tier cascade whose draft is accepted (one HTTP request per call), against a raw
  `httpx.AsyncClient.post` of the same request; ours with its default audit record, and with it turned off. LiteLLM has no cascade: its row is one `acompletion` call.
- sdk: an `openai.AsyncOpenAI` `chat.completions.create` call instrumented in observe mode inside a run
  scope (`run()`, entered once per worker, as an agent run would), against the same call uninstrumented.
  Both harnesses then record every call's tokens and cost in the run; outside a run scope cascadeflow
  1.2.0 records nothing, so that would compare work with no work. Ours is measured twice: with the run
  trace only (what 1.2.0 keeps) and with the JSONL audit record written too (our default). LiteLLM's row is
  its own SDK entry point, `acompletion`.

Every contender is measured against the same raw call made in its own venv (`raw-...@<peer>` rows), so a
venv's own start-up of the call is not counted as overhead. What cascadeflow 1.2.0's harness does per
instrumented call in observe mode (read from its `cascadeflow/harness/instrument.py`): it checks its run
context's limits (budget, tool calls, compliance, latency, energy, KPI weights) against the run's totals,
prices the call's tokens from a fixed table, adds them to the run's totals and appends one trace entry.

"overhead" is the contender's median per-call time minus the baseline's median in the same round; the
figure shown is the median over rounds (wall clock, and the worker process's CPU time). The cascade
workers check every answer: a call whose draft was not accepted counts as a failure and fails the run; the
instrumented SDK workers check that the run recorded every call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

QUESTION = "Why would a Redis connection pool be exhausted right after a deploy?"
ANSWER = ("A deploy restarts every application instance at once, and each new instance opens its full pool of "
          "Redis connections while the old instances are still draining theirs, so for a short time the "
          "server sees about twice the usual number of clients. If the pool size times the instance count is "
          "close to Redis's maxclients limit, new connections are refused and the pool reports exhaustion. "
          "Stagger the rollout, lower the per-instance pool size, or raise maxclients to fix it.")
DRAFT, VERIFIER = "gpt-4o-mini", "gpt-4o"
MAX_TOKENS = 200
API_KEY = "sk-loopback-benchmark"
LITELLM_VERSION = "1.110.2"
PEERS = {"cascadeflow-1.2.0": ["cascadeflow==1.2.0"], "litellm": [f"litellm=={LITELLM_VERSION}"]}
# worker -> (venv: None for ours, or a PEERS key; path; baseline worker). Each contender is measured against
# the raw call made in its own venv (`raw-...@<venv>`): an interpreter and site-packages of its own start
# the same call faster or slower, which would otherwise be counted as the contender's overhead (it once made
# an instrumented peer look faster than the bare SDK).
WORKERS = {
    "raw-http": (None, "cascade", None),
    "raw-sdk": (None, "sdk", None),
    "cascadeflow": (None, "cascade", "raw-http"),
    "cascadeflow-noaudit": (None, "cascade", "raw-http"),
    "cascadeflow-sdk": (None, "sdk", "raw-sdk"),
    "cascadeflow-sdk+audit": (None, "sdk", "raw-sdk"),
    **{f"raw-{path}@{peer}": (peer, "cascade" if path == "http" else "sdk", None)
       for peer in PEERS for path in ("http", "sdk")},
    "cascadeflow-1.2.0": ("cascadeflow-1.2.0", "cascade", "raw-http@cascadeflow-1.2.0"),
    "cascadeflow-1.2.0-sdk": ("cascadeflow-1.2.0", "sdk", "raw-sdk@cascadeflow-1.2.0"),
    "litellm": ("litellm", "cascade", "raw-http@litellm"),
    "litellm-sdk": ("litellm", "sdk", "raw-sdk@litellm"),
}


# ---- the API double ----------------------------------------------------------------------------------------

def serve() -> None:
    """Run the API double on an ephemeral loopback port; print the port, then serve until killed."""
    import socket

    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    counts: dict[str, int] = {}

    async def completions(request: Request) -> Response:
        body = json.loads(await request.body())
        counts[body["model"]] = counts.get(body["model"], 0) + 1
        return JSONResponse({
            "id": "chatcmpl-loopback", "object": "chat.completion", "created": 1_700_000_000,
            "model": body["model"], "system_fingerprint": None,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER, "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 24, "completion_tokens": 96, "total_tokens": 120}})

    async def stats(request: Request) -> Response:
        return JSONResponse(counts)

    app = Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"]),
                            Route("/stats", stats)])
    sock = socket.socket()
    # Accepted connections inherit TCP_NODELAY from the listening socket on Linux; without it the reply's
    # second write waits for a delayed ACK (about 40 ms on loopback), which would swamp what is measured.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


# ---- the workers (each runs in its own process and venv) ---------------------------------------------------

MESSAGES = [{"role": "user", "content": QUESTION}]
# How many calls the worker's run scope has recorded so far (instrumented SDK workers only); read between
# blocks, never inside the timed region.
RECORDED: list[Any] = [None]


def instrument(kind: str, workdir: Path) -> None:
    """Instrument the SDK and enter a run scope for the worker's life, like one long agent run. Called
    outside any task, so every task the worker's loop starts later runs inside the scope."""
    if kind not in ("raw-sdk", "cascadeflow-sdk", "cascadeflow-sdk+audit", "cascadeflow-1.2.0-sdk"):
        return
    import openai

    uninstrumented = openai.resources.chat.completions.AsyncCompletions.create
    if kind.startswith("cascadeflow-sdk"):
        import cascadeflow

        cascadeflow.init(mode="observe", audit=str(workdir / "audit.jsonl") if "audit" in kind else False)
        scope = cascadeflow.run()
        scope.__enter__()
        RECORDED[0] = lambda: scope.summary()["steps"]
    elif kind == "cascadeflow-1.2.0-sdk":
        from cascadeflow.harness import init, run

        init(mode="observe")
        peer_scope = run()
        peer_scope.__enter__()
        RECORDED[0] = lambda: peer_scope.step_count
    instrumented = openai.resources.chat.completions.AsyncCompletions.create is not uninstrumented
    if instrumented != (kind != "raw-sdk"):
        raise SystemExit(f"{kind}: the openai SDK is {'' if instrumented else 'not '}instrumented")


async def make_call(kind: str, base_url: str, workdir: Path) -> Any:
    """The contender's call as an async function of no arguments; it returns False when the draft was rejected."""
    if kind == "raw-http":
        import httpx

        client = httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {API_KEY}"})
        body = {"model": DRAFT, "messages": MESSAGES, "max_tokens": MAX_TOKENS}

        async def raw_http() -> bool:
            reply = await client.post("/chat/completions", json=body)
            reply.raise_for_status()
            return bool(reply.json()["choices"][0]["message"]["content"])
        return raw_http
    if kind.endswith(("-sdk", "-sdk+audit")):
        if kind == "litellm-sdk":
            return await make_call("litellm", base_url, workdir)
        import openai

        sdk = openai.AsyncOpenAI(base_url=base_url, api_key=API_KEY, max_retries=0)

        async def sdk_call() -> bool:
            done = await sdk.chat.completions.create(model=DRAFT, messages=MESSAGES, max_tokens=MAX_TOKENS)
            return bool(done.choices[0].message.content)
        return sdk_call
    if kind == "litellm":
        import litellm

        async def litellm_call() -> bool:
            done = await litellm.acompletion(model=f"openai/{DRAFT}", messages=MESSAGES, max_tokens=MAX_TOKENS,
                                             api_base=base_url, api_key=API_KEY)
            return bool(done.choices[0].message.content)
        return litellm_call
    if kind in ("cascadeflow", "cascadeflow-noaudit"):
        if kind == "cascadeflow-noaudit":
            os.environ["CASCADEFLOW_AUDIT_PATH"] = "off"  # the documented switch for the default audit log
        from cascadeflow import CascadeAgent, ModelConfig

        agent = CascadeAgent(models=[ModelConfig(name=name, provider="openai", base_url=base_url, api_key=API_KEY)
                                     for name in (DRAFT, VERIFIER)])

        async def ours() -> bool:
            return (await agent.run(QUESTION, max_tokens=MAX_TOKENS)).draft_accepted
        return ours
    if kind == "cascadeflow-1.2.0":
        from cascadeflow import CascadeAgent, ModelConfig

        agent = CascadeAgent(models=[ModelConfig(name=DRAFT, provider="openai", cost=0.00015),
                                     ModelConfig(name=VERIFIER, provider="openai", cost=0.0025)])
        # Its OpenAI provider fixes the API host in its constructor and takes no base_url; point it here.
        agent.providers["openai"].base_url = base_url

        async def peer() -> bool:
            return (await agent.run(QUESTION, max_tokens=MAX_TOKENS)).draft_accepted
        return peer
    raise SystemExit(f"unknown worker kind {kind!r}; one of {', '.join(WORKERS)}")


def work(kind: str, base_url: str) -> None:
    """Answer block requests on stdin ({"calls": n}) with per-call wall and CPU times in ns on stdout."""
    kind = kind.split("@")[0]  # a raw baseline in a peer's venv is the same call as ours
    os.environ.setdefault("OPENAI_API_KEY", API_KEY)
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no download of LiteLLM's price map
    loop = asyncio.new_event_loop()
    with tempfile.TemporaryDirectory() as workdir:
        instrument(kind, Path(workdir))
        call = loop.run_until_complete(make_call(kind, base_url, Path(workdir)))

        async def block(calls: int) -> dict[str, Any]:
            wall, cpu, failures = [], [], 0
            recorded_before = RECORDED[0]() if RECORDED[0] else calls
            for _ in range(calls):
                w0, c0 = time.perf_counter_ns(), time.process_time_ns()
                accepted = await call()
                cpu.append(time.process_time_ns() - c0)
                wall.append(time.perf_counter_ns() - w0)
                failures += not accepted
            recorded = RECORDED[0]() - recorded_before if RECORDED[0] else calls
            return {"wall": wall, "cpu": cpu, "failures": failures + abs(calls - recorded)}

        print(json.dumps({"ready": kind}), flush=True)
        for line in sys.stdin:
            print(json.dumps(loop.run_until_complete(block(json.loads(line)["calls"]))), flush=True)


# ---- the orchestrator --------------------------------------------------------------------------------------

def peer_python(out: Path, peer: str) -> Path:
    """The peer's venv interpreter, creating the venv (pinned packages, our openai version) when missing."""
    venv = out / "peers" / peer
    wanted = [*PEERS[peer], f"openai=={metadata.version('openai')}"]
    marker = venv / "installed.txt"
    if not marker.exists() or marker.read_text().split() != wanted:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *wanted], check=True)
        marker.write_text(" ".join(wanted))
    return venv / "bin" / "python"


def start_worker(kind: str, python: Path, base_url: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([str(python), __file__, "worker", kind, base_url], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=tempfile.gettempdir())
    assert proc.stdout is not None
    ready = proc.stdout.readline()
    if not ready.startswith('{"ready"'):
        raise SystemExit(f"worker {kind} did not start (exit {proc.wait()})")
    return proc


def run_block(proc: subprocess.Popen[str], calls: int) -> dict[str, Any]:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps({"calls": calls}) + "\n")
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())


def summarise(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, float]]:
    """Per worker: median per-call wall and CPU in µs, and the median over rounds of its overhead."""
    table = {}
    for kind, (_, path, baseline) in WORKERS.items():
        row = {"path": path, "baseline": baseline or "",
               "wall_us": statistics.median(t for r in rounds for t in r[kind]["wall"]) / 1000,
               "cpu_us": statistics.median(t for r in rounds for t in r[kind]["cpu"]) / 1000}
        if baseline:
            for clock in ("wall", "cpu"):
                row[f"{clock}_overhead_us"] = statistics.median(
                    statistics.median(r[kind][clock]) - statistics.median(r[baseline][clock]) for r in rounds) / 1000
        table[kind] = row
    return table


def print_table(table: dict[str, dict[str, Any]]) -> None:
    """One markdown table per path; "× ours" divides a peer's overhead by ours (the audited row on sdk)."""
    for path in ("cascade", "sdk"):
        ours = table["cascadeflow" if path == "cascade" else "cascadeflow-sdk+audit"]
        baseline = "raw httpx POST" if path == "cascade" else "uninstrumented openai SDK call"
        print(f"\n{path} path, overhead over the {baseline} (median over rounds, µs)\n")
        print("| contender | per call, wall | overhead, wall | × ours | overhead, CPU | × ours |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for kind, row in table.items():
            if row["path"] != path:
                continue
            if not row["baseline"]:
                print(f"| {kind} | {row['wall_us']:.0f} | baseline | | baseline | |")
                continue
            ratios = [row[f"{clock}_overhead_us"] / ours[f"{clock}_overhead_us"]
                      if ours[f"{clock}_overhead_us"] > 0 else float("nan") for clock in ("wall", "cpu")]
            print(f"| {kind} | {row['wall_us']:.0f} | {row['wall_overhead_us']:.0f} | {ratios[0]:.1f} "
                  f"| {row['cpu_overhead_us']:.0f} | {ratios[1]:.1f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--block", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("bench-output"))
    args = parser.parse_args()
    args.out = args.out.resolve()
    pythons = {peer: peer_python(args.out, peer) for peer in PEERS}
    server = subprocess.Popen([sys.executable, __file__, "serve"], stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    base_url = f"http://127.0.0.1:{server.stdout.readline().strip()}/v1"
    workers: dict[str, subprocess.Popen[str]] = {}
    try:
        for kind, (venv, _, _) in WORKERS.items():
            workers[kind] = start_worker(kind, pythons[venv] if venv else Path(sys.executable), base_url)
        for proc in workers.values():
            run_block(proc, args.block)  # warm-up, not counted
        order, rounds = list(workers), []
        started = datetime.now(UTC)
        for _ in range(args.rounds):
            random.shuffle(order)
            rounds.append({kind: run_block(workers[kind], args.block) for kind in order})
    finally:
        for proc in [*workers.values(), server]:
            proc.kill()
            proc.wait()
    failures = {kind: sum(r[kind]["failures"] for r in rounds) for kind in WORKERS}
    table = summarise(rounds)
    versions = {"cascadeflow-1.2.0": "cascadeflow 1.2.0", "litellm": f"litellm {LITELLM_VERSION}"}
    print(f"{started:%Y-%m-%d %H:%M} UTC, {args.rounds} rounds × {args.block} calls per contender, "
          f"peers: {', '.join(versions.values())}, openai {metadata.version('openai')}")
    print_table(table)
    (args.out / "overhead_peers.json").write_text(json.dumps(
        {"date": started.isoformat(), "rounds": args.rounds, "block": args.block, "table": table,
         "failures": failures}, indent=2))
    if any(failures.values()):
        print(f"\ncalls that did not return an accepted answer: {failures}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve()
    elif sys.argv[1:2] == ["worker"]:
        work(sys.argv[2], sys.argv[3])
    else:
        sys.exit(main())
