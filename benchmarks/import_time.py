"""Measure `import cascadeflow` in fresh interpreters, and the embedded local model's load time and speed.

Usage: .venv/bin/python benchmarks/import_time.py [--runs 15] [--skip-local]

Import time is the median wall time of `python -c "import cascadeflow"` minus that of `python -c "pass"`
(both measured in the same run, alternating, so machine load affects both alike), plus the top
self-time offenders from `-X importtime`. The local model section loads SmolLM2-135M-Instruct and
generates greedily, reporting load seconds and generated tokens per second.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from typing import Any

HEAVY = ("llama_cpp", "redis", "psycopg", "opentelemetry", "openai", "anthropic", "numpy", "matplotlib")
TARGET_MS = 150.0


def wall_ms(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return (time.perf_counter() - started) * 1000


def import_times(runs: int) -> tuple[float, float]:
    bare, full = [], []
    wall_ms("import cascadeflow")  # warm the file cache and .pyc files once
    for _ in range(runs):
        bare.append(wall_ms("pass"))
        full.append(wall_ms("import cascadeflow"))
    return statistics.median(bare), statistics.median(full)


def importtime_rows() -> list[tuple[int, int, str]]:
    """(self µs, cumulative µs, module) of every module `import cascadeflow` loads, from `-X importtime`."""
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", "import cascadeflow"], check=True,
                         capture_output=True, text=True).stderr
    rows = []
    for line in err.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = (part.strip() for part in line[len("import time:"):].split("|"))
        rows.append((int(self_us), int(cumulative_us), name))
    return rows


def heavy_modules_loaded() -> list[str]:
    code = f"import sys, cascadeflow; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return [m for m in out.strip().split(",") if m]


async def local_model_speed(rounds: int = 3) -> dict[str, dict[str, float]]:
    """Load time and generation speed per thread count, measured alternately so load affects each alike."""
    from cascadeflow.messages import build_request
    from cascadeflow.providers.local import LocalLlama

    cpus = os.cpu_count() or 1
    providers = {n: LocalLlama(n_threads=n) for n in sorted({1, cpus})}
    request = build_request("Write a short story about a lighthouse keeper.", max_tokens=100, temperature=0)
    stats: dict[int, dict[str, Any]] = {}
    for n, provider in providers.items():
        stats[n] = {"load_s": provider.load().load_seconds, "speeds": []}
        await provider.complete(build_request("hi", max_tokens=2, temperature=0))  # warm-up
    for _ in range(rounds):
        for n, provider in providers.items():
            started = time.perf_counter()
            response = await provider.complete(request)
            stats[n]["speeds"].append(response.usage.output_tokens / (time.perf_counter() - started))
            stats[n]["tokens"] = response.usage.output_tokens
    return {f"{n} thread(s)": {"load_s": s["load_s"], "tokens": s["tokens"],
                               "median_tps": statistics.median(s["speeds"]),
                               "runs": ", ".join(f"{v:.1f}" for v in s["speeds"])} for n, s in stats.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--skip-local", action="store_true")
    args = parser.parse_args()

    bare, full = import_times(args.runs)
    own = full - bare
    print(f"python startup (median of {args.runs}): {bare:.1f} ms")
    print(f"python + import cascadeflow (median of {args.runs}): {full:.1f} ms")
    print(f"import cascadeflow alone: {own:.1f} ms (target <= {TARGET_MS:.0f} ms: "
          f"{'met' if own <= TARGET_MS else 'MISSED'})")
    heavy = heavy_modules_loaded()
    print(f"optional/heavy modules imported by `import cascadeflow`: {', '.join(heavy) or 'none'}")
    rows = importtime_rows()
    package = next(cumulative for _, cumulative, name in rows if name == "cascadeflow")
    print(f"-X importtime cumulative for the cascadeflow package: {package / 1000:.1f} ms")
    print("top self times under -X importtime (µs self / µs cumulative / module):")
    for self_us, cumulative_us, name in sorted(rows, reverse=True)[:10]:
        print(f"  {self_us:>7} {cumulative_us:>8}  {name.strip()}")
    if not args.skip_local:
        print(f"local model SmolLM2-135M-Instruct Q4_1 via llama.cpp ({os.cpu_count()} CPUs, load average "
              f"{os.getloadavg()[0]:.1f} before):")
        for label, row in asyncio.run(local_model_speed()).items():
            print(f"  {label}: load {row['load_s']:.3f} s; {row['tokens']} tokens per run; median "
                  f"{row['median_tps']:.1f} tokens/s (runs: {row['runs']})")


if __name__ == "__main__":
    main()
