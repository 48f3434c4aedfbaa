"""Run every benchmark one after another (never in parallel: timings share the machine) and keep the output.

Usage: .venv/bin/python benchmarks/run_all.py [--out bench-output] [--data ../shared/data/replay]

Each script's output goes to <out>/<name>.txt; the replay benchmark runs only when the data folder exists.
The figures in docs/benchmarks.md come from these scripts.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TIMING = ["import_time", "adapter_overhead", "validation_overhead", "decision_overhead", "harness_overhead",
          "harness_interleaved", "audit_write", "budget_admission", "budget_throughput", "overhead_peers"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-output"))
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data" / "replay")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    runs = [(name, [str(HERE / f"{name}.py")]) for name in TIMING]
    if args.data.is_dir():
        recorded = args.data / "routellm-gpt4-mixtral" / "gsm8k" / "gsm8k_responses.csv"
        runs.append(("validation_overhead_recorded", [str(HERE / "validation_overhead.py"), "--recorded",
                                                      str(recorded), "--zellinger",
                                                      str(args.data / "zellinger-cascades")]))
        runs.append(("replay_targets", [str(HERE / "replay_targets.py"), "--data", str(args.data)]))
        runs.append(("replay_complexity", [str(HERE / "replay_complexity.py"), "--data", str(args.data)]))
    else:
        print(f"skipping the recorded-data benchmarks: no data at {args.data}")
    failed = []
    for name, cmd in runs:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, *cmd], check=False, capture_output=True, text=True)
        (args.out / f"{name}.txt").write_text(done.stdout + done.stderr)
        print(f"{name}: exit {done.returncode} in {time.perf_counter() - started:.1f}s -> {args.out / name}.txt")
        if done.returncode:
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
