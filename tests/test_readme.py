"""The README's quick start runs as written: its code blocks are executed here, the first on the embedded
model, the second with OPENAI_API_KEY / OPENAI_BASE_URL pointing at the loopback OpenAI server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from loopback import Reply

ROOT = Path(__file__).resolve().parents[1]
ANSWER = ("A deploy restarts every instance at once, and each new instance opens its full Redis connection "
          "pool while the old ones still hold theirs, so the pool runs out until the old instances drain.")


def quick_start_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def run_block(code: str, cwd: Path, **env: str) -> str:
    """Run one block as a user would (a script of its own, in their directory); its stdout."""
    script = cwd / "quick_start.py"
    script.write_text(code, encoding="utf-8")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CASCADEFLOW_", "OPENAI_"))}
    done = subprocess.run([sys.executable, str(script)], cwd=cwd, env={**environ, **env}, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_quick_start_has_the_offline_call_and_the_cascade() -> None:
    blocks = quick_start_blocks()
    assert len(blocks) == 2
    assert '"local/smollm2"' in blocks[0] and "CascadeAgent" in blocks[1]


def test_the_offline_quick_start_answers_and_writes_an_audit_record(tmp_path) -> None:
    out = run_block(quick_start_blocks()[0], tmp_path).splitlines()
    assert out[0].startswith("local/smollm2 ") and out[0].removeprefix("local/smollm2 ").strip()
    records = [json.loads(line) for line in (tmp_path / ".cascadeflow" / "audit.jsonl").read_text().splitlines()]
    assert [(r["alert_id"], r["model_selected"]) for r in records] == [("INC-042", "local/smollm2")]
    assert records[0]["request_id"] == out[-1].split()[-1]


def test_the_cascade_quick_start_accepts_a_good_draft_from_the_cheap_model(tmp_path, openai_server) -> None:
    openai_server.default = Reply(text=ANSWER, usage={"input": 30, "output": 40})
    out = run_block(quick_start_blocks()[1], tmp_path, OPENAI_API_KEY="sk-readme-test",
                    OPENAI_BASE_URL=openai_server.base_url)
    assert [r.json["model"] for r in openai_server.requests] == ["gpt-4o-mini"]
    assert out.split()[:2] == ["openai/gpt-4o-mini", "True"]
