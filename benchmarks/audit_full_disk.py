"""Audit records on a full disk: how many of 200 answered calls end up in the audit log, the spool, or lost.

Usage: .venv/bin/python benchmarks/audit_full_disk.py --full-dir DIR [--calls 200] [--room 16384]

`--full-dir` is a directory on a small file system of its own that the script may fill (a tmpfs mounted
for the purpose: `mount -t tmpfs -o size=64k tmpfs DIR`). The real JSONL sink writes the audit log there.
The script fills the file system with a filler file until `--room` bytes are left, makes `--calls` calls
(`CascadeFlow.complete`, a scripted provider, the default pipeline), then deletes the filler (the disk is
freed) and makes one more call, and counts the lines in the log. Two scenarios:

- spool elsewhere: the spool file is on another file system (the default: the temporary directory);
- spool full too: the spool file is on the same full file system.

Printed per scenario: calls answered, records in the log before and after the disk was freed, records
spooled, records counted lost (taken by neither the sink nor the spool) before the disk was freed.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from cascadeflow import CascadeFlow, ModelConfig
from cascadeflow.runtime.pipeline import Runtime
from cascadeflow.testing import ScriptedProvider
from cascadeflow.trace.delivery import count_spooled
from cascadeflow.trace.jsonl import JsonlSink

MODEL = ModelConfig(name="gpt-4o-mini", provider="openai", api_key="sk-probe-not-sent")
PROMPT = "Summarise the checkout incident for the on-call engineer."


def fill(directory: Path, room: int) -> Path:
    """A filler file that leaves about `room` bytes free on `directory`'s file system."""
    filler = directory / "filler.bin"
    free = os.statvfs(directory).f_bavail * os.statvfs(directory).f_frsize
    with open(filler, "wb") as out:
        out.write(b"\0" * max(free - room, 0))
    return filler


def lines(path: Path) -> tuple[int, int]:
    """(whole records, broken lines) in a JSONL log."""
    whole = broken = 0
    for line in path.read_bytes().splitlines() if path.exists() else ():
        try:
            json.loads(line)
            whole += 1
        except ValueError:
            broken += 1
    return whole, broken


def scenario(name: str, full_dir: Path, spool: Path, calls: int, room: int) -> dict[str, object]:
    log = full_dir / f"audit-{name}.jsonl"
    for stale in (log, spool):
        stale.unlink(missing_ok=True)
    filler = fill(full_dir, room)
    provider = ScriptedProvider(default="Checkout is degraded; the pool is exhausted.")
    sink = JsonlSink(log, max_bytes=None)
    runtime = Runtime(resolve_provider=provider.resolver(), sinks=[sink], audit_spool=spool)
    flow = CascadeFlow(runtime=runtime)
    answered = sum(bool(flow.complete(model=MODEL, messages=PROMPT, max_tokens=50).content) for _ in range(calls))
    before = {"log": lines(log)[0], "spooled": count_spooled(spool), "lost": runtime.delivery.lost}
    filler.unlink()  # the disk is freed: the next call's delivery writes what the sink owes first
    flow.complete(model=MODEL, messages=PROMPT, max_tokens=50)
    after, broken = lines(log)
    sink.close()
    log.unlink(missing_ok=True)
    spool.unlink(missing_ok=True)
    return {"scenario": name, "answered": answered, "log_full": before["log"], "spooled": before["spooled"],
            "lost_while_full": before["lost"], "log_after_freeing": after, "calls_total": calls + 1,
            "broken": broken}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full-dir", type=Path, required=True)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--room", type=int, default=16_384)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as roomy:
        rows = [scenario("spool-elsewhere", args.full_dir, Path(roomy) / "spool.jsonl", args.calls, args.room),
                scenario("spool-full-too", args.full_dir, args.full_dir / "spool.jsonl", args.calls, args.room)]
    print("| scenario | calls answered | in the log while full | spooled | counted lost "
          "| in the log after freeing the disk | broken lines |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['scenario']} | {row['answered']} | {row['log_full']} | {row['spooled']} | "
              f"{row['lost_while_full']} | {row['log_after_freeing']} of {row['calls_total']} | {row['broken']} |")


if __name__ == "__main__":
    main()
