"""The documentation stays usable: the README names the two setup commands, the benchmarks page stays a short
current table whose every command is a script that exists, and the docs build is part of CI."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "docs" / "benchmarks.md"


def test_readme_gives_the_two_setup_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_ci_builds_the_docs_strictly() -> None:
    assert "make docs" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^docs:.*\n\t.*mkdocs build --strict", makefile, flags=re.MULTILINE)


def test_the_benchmarks_page_stays_short() -> None:
    assert len(BENCHMARKS.read_text(encoding="utf-8").splitlines()) < 400


def test_every_benchmark_command_on_the_page_is_a_kept_script() -> None:
    scripts = set(re.findall(r"benchmarks/(\w+\.py)", BENCHMARKS.read_text(encoding="utf-8")))
    assert scripts, "the page names no command"
    missing = sorted(s for s in scripts if not (ROOT / "benchmarks" / s).is_file())
    assert not missing, f"docs/benchmarks.md cites scripts that do not exist: {missing}"
