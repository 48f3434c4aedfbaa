"""docs/benchmarks.md is generated from docs/bench/*.md; a fragment edited without regenerating the page
would leave the published numbers stale, so the suite checks they agree."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_benchmarks_page_is_assembled_from_the_current_fragments() -> None:
    done = subprocess.run([sys.executable, "benchmarks/assemble_docs.py", "--check"], check=False, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, (done.stdout + done.stderr
                                  + "\nrun: .venv/bin/python benchmarks/assemble_docs.py")


def test_readme_gives_the_two_setup_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
