"""Instrumented SDK calls through the cache step: a hit against a miss of the same `openai` SDK call.

The real openai SDK (`chat.completions.create`) over an in-process httpx MockTransport (a canned answer, no
network: a miss costs the SDK, our pipeline and the transport, none of a provider's seconds, so the ratio is
a lower bound). `cascadeflow.init(mode="enforce", cache_config=...)` with an audit log file. Each iteration,
interleaved: one uninstrumented call (mode "off" run scope), one miss (a new question: sent, priced,
audited, stored) and one hit (a stored question: answered with a `ChatCompletion` built from the cache,
audited). With `--stream` every call is `stream=True` and read to its end: a miss streams the canned answer
as server-sent events, a hit is replayed from the cache as `ChatCompletionChunk`s. Medians after a warm-up;
also checks that the hits reached no transport and cost $0.

    .venv/bin/python benchmarks/cache_sdk.py [--calls 400] [--backend memory|sqlite] [--stream]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import openai

import cascadeflow
from cascadeflow import CacheConfig

STORED = "P2: disk usage 95% on db-1. What now?"
BASE_URL = "http://bench.invalid/v1"


USAGE = {"prompt_tokens": 42, "completion_tokens": 11, "total_tokens": 53}


def streamed(text: str, with_usage: bool) -> httpx.Response:
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
    chunks = [{**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": text}}]},
              {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}]
    if with_usage:
        chunks.append({**head, "choices": [], "usage": USAGE})
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    return httpx.Response(200, content=body.encode(), headers={"content-type": "text/event-stream"})


def canned_client(sent: list[str]) -> openai.OpenAI:
    def answer(request: httpx.Request) -> httpx.Response:
        payload = json.loads(request.content)
        asked = payload["messages"][-1]["content"]
        sent.append(asked)
        if payload.get("stream"):
            return streamed(f"answer to: {asked}", bool((payload.get("stream_options") or {}).get("include_usage")))
        body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
                "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                             "message": {"role": "assistant", "content": f"answer to: {asked}"}}],
                "usage": USAGE}
        return httpx.Response(200, json=body, headers={"x-request-id": "req_1"})

    return openai.OpenAI(api_key="sk-bench", base_url=BASE_URL, max_retries=0,
                         http_client=httpx.Client(transport=httpx.MockTransport(answer)))


def ask(client: openai.OpenAI, text: str, stream: bool = False) -> str:
    messages = [{"role": "user", "content": text}]
    if stream:
        chunks = client.chat.completions.create(model="gpt-4o-mini", max_tokens=200, messages=messages,
                                                stream=True)
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    out = client.chat.completions.create(model="gpt-4o-mini", max_tokens=200, messages=messages)
    return out.choices[0].message.content or ""


def measure(calls: int, backend: str, workdir: Path, stream: bool = False) -> dict[str, float]:
    os.environ["OPENAI_BASE_URL"] = BASE_URL  # the host the SDK calls is OpenAI's (priced as such)
    sent: list[str] = []
    client = canned_client(sent)
    config = CacheConfig(backend=backend, sqlite_path=str(workdir / "cache.sqlite3"),  # type: ignore[arg-type]
                         key_prefix=f"cfbench:{uuid.uuid4().hex[:8]}:")
    cascadeflow.init(mode="enforce", audit=str(workdir / "audit.jsonl"), cache_config=config)
    ask(client, STORED)
    samples: dict[str, list[float]] = {"off": [], "miss": [], "hit": []}
    warmup = 50
    for i in range(calls + warmup):
        question = f"P2: disk usage {i}% on web-{i}. What now?"
        t0 = time.perf_counter()
        with cascadeflow.run(mode="off"):
            ask(client, f"uninstrumented {question}", stream)
        t1 = time.perf_counter()
        ask(client, question, stream)
        t2 = time.perf_counter()
        before = len(sent)
        assert ask(client, STORED, stream) == f"answer to: {STORED}" and len(sent) == before  # a hit sends nothing
        t3 = time.perf_counter()
        if i >= warmup:
            samples["off"].append((t1 - t0) * 1e6)
            samples["miss"].append((t2 - t1) * 1e6)
            samples["hit"].append((t3 - t2) * 1e6)
    records = [json.loads(line) for line in (workdir / "audit.jsonl").read_text().splitlines()]
    hits = [r for r in records if r["action"] == "cache_hit"]
    assert len(hits) == calls + warmup and all(r["cost_usd"] == 0 for r in hits)
    ratios = [m / h for m, h in zip(samples["miss"], samples["hit"], strict=True)]
    return {"uninstrumented_p50_us": statistics.median(samples["off"]),
            "miss_p50_us": statistics.median(samples["miss"]), "hit_p50_us": statistics.median(samples["hit"]),
            "miss_over_hit_p50": statistics.median(ratios)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--backend", choices=("memory", "sqlite"), default="memory")
    parser.add_argument("--stream", action="store_true", help="stream=True calls, read to their end")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(args.calls, args.backend, Path(tmp), args.stream)
    kind = "stream=True" if args.stream else "plain"
    print(f"openai SDK chat.completions.create ({kind}), enforce mode, {args.backend} cache, {args.calls} iterations")
    print(f"uninstrumented call p50  {result['uninstrumented_p50_us']:8.0f} µs")
    print(f"miss (sent, stored) p50  {result['miss_p50_us']:8.0f} µs")
    print(f"hit (from cache) p50     {result['hit_p50_us']:8.0f} µs")
    print(f"miss/hit (median of pairs) {result['miss_over_hit_p50']:6.1f}")


if __name__ == "__main__":
    main()
