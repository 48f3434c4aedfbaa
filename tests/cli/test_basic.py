"""`cascadeflow chat`, `models` and `doctor`, run through typer's CliRunner."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from cascadeflow.cli import (
    app,
    basic,  # registers chat, models, doctor on `app`
)
from cascadeflow.models import PROVIDERS
from cascadeflow.providers.base import clear_provider_cache

SECRET = "sk-DOCTOR-LEAKCHECK-42424242"
KEY_VARS = [f.key_env for f in PROVIDERS.values() if f.key_env]
BASE_VARS = [f.base_url_env for f in PROVIDERS.values() if f.base_url_env]


def run(*args: str, **env: str | None) -> tuple[int, str]:
    # a wide terminal keeps rich from folding table cells, so assertions can read whole lines
    clean = {var: None for var in KEY_VARS + BASE_VARS + ["CASCADEFLOW_REDIS_URL", "CASCADEFLOW_POSTGRES_URL"]}
    result = CliRunner().invoke(app, list(args), env={**clean, "COLUMNS": "250", **env})
    return result.exit_code, result.output


@pytest.mark.local_model
def test_chat_answers_with_the_local_model_and_prints_usage_cost_latency() -> None:
    code, out = run("chat", "Say hello.", "--model", "local/smollm2", "--max-tokens", "8", "-t", "0")
    assert code == 0, out
    assert "local/smollm2" in out and "out tokens" in out and "$0.000000" in out and " ms" in out
    answer = out.splitlines()[0]
    assert answer.strip()


def test_chat_prices_a_remote_call_from_its_reported_usage(openai_server) -> None:  # type: ignore[no-untyped-def]
    clear_provider_cache()  # adapters read the base URL at construction
    openai_server.enqueue(text="Paris", usage={"input": 1_000, "output": 500})
    code, out = run("chat", "Capital of France?", "--model", "openai/gpt-4o-mini", "--max-tokens", "20",
                    OPENAI_API_KEY=SECRET, OPENAI_BASE_URL=openai_server.base_url)
    clear_provider_cache()
    assert code == 0, out
    assert out.splitlines()[0] == "Paris"
    # gpt-4o-mini: $0.15 / $0.60 per million -> 1000 * 0.15e-6 + 500 * 0.60e-6
    assert "1000 in / 500 out tokens" in out and "$0.000450" in out
    sent = openai_server.requests[0].json
    assert 20 in (sent.get("max_tokens"), sent.get("max_completion_tokens"))
    assert SECRET not in out


def test_chat_with_an_unknown_provider_lists_the_known_ones() -> None:
    code, out = run("chat", "hi", "--model", "nosuchcloud-model")
    assert code == 2
    assert "known providers" in out and "groq" in out and "openai" in out


def test_chat_without_a_key_names_the_variable_before_any_request() -> None:
    clear_provider_cache()
    code, out = run("chat", "hi", "--model", "groq/llama3-8b-8192")
    assert code == 2 and "GROQ_API_KEY" in out


def test_chat_rejects_a_non_positive_max_tokens() -> None:
    code, out = run("chat", "hi", "--model", "local/smollm2", "--max-tokens", "-3")
    assert code == 2 and "max_tokens" in out


def test_models_lists_published_prices_per_million_as_json() -> None:
    code, out = run("models", "--provider", "groq", "--json")
    assert code == 0, out
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows and all(r["model"].startswith("groq/") for r in rows)
    by_id = {r["model"]: r for r in rows}
    assert (by_id["groq/llama-3.1-8b-instant"]["input_per_million"],
            by_id["groq/llama-3.1-8b-instant"]["output_per_million"]) == ("0.05", "0.08")


def test_models_search_filters_and_the_table_names_the_price_data(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from rich.console import Console

    monkeypatch.setattr(basic, "console", Console(force_terminal=True, width=250))
    code, out = run("models", "--search", "claude-3-5-haiku")
    assert code == 0, out
    assert "genai-prices" in out and "anthropic/claude-3-5-haiku" in out and "gpt-4o" not in out
    code, out = run("models", "--search", "haiku", "--json")
    assert all("haiku" in json.loads(line)["model"] for line in out.splitlines())


def test_models_piped_prints_every_name_whole_one_row_per_line() -> None:
    code, out = run("models", COLUMNS="80")  # not a terminal: no table to fit into 80 columns
    assert code == 0, out
    header, *rows = out.splitlines()
    assert header.split("\t")[0] == "model" and len(rows) > 100
    names = [row.split("\t")[0] for row in rows]
    assert all("…" not in name for name in names) and max(map(len, names)) > 60


def test_models_search_finds_a_dated_id_through_the_entry_that_prices_it() -> None:
    code, out = run("models", "--search", "gpt-4o-mini-2024-07-18")
    assert code == 0, out
    rows = {line.split("\t")[0]: line.split("\t") for line in out.splitlines()[1:]}
    dated = rows["openai/gpt-4o-mini-2024-07-18"]
    assert dated[1:3] == ["0.15", "0.6"] and dated[4] == "priced as gpt-4o-mini"


def test_version_option_prints_the_package_version() -> None:
    import cascadeflow

    code, out = run("--version")
    assert code == 0 and out.strip() == f"cascadeflow {cascadeflow.__version__}"


def test_models_show_self_hosted_providers_at_zero() -> None:
    code, out = run("models", "--provider", "local", "--json")
    assert code == 0
    assert [json.loads(line)["model"] for line in out.splitlines()] == ["local/*"]


def test_models_rejects_an_unknown_provider() -> None:
    code, out = run("models", "--provider", "nope")
    assert code == 2 and "known providers" in out


def test_doctor_says_set_but_never_prints_the_key() -> None:
    code, out = run("doctor", OPENAI_API_KEY=SECRET, GROQ_API_KEY=SECRET)
    assert code == 0, out
    assert SECRET not in out
    lines = {line.split()[1]: line for line in out.splitlines() if line.startswith("│ ")}
    assert "OPENAI_API_KEY: set" in lines["openai"] and "GROQ_API_KEY: set" in lines["groq"]
    assert "ANTHROPIC_API_KEY: not set" in lines["anthropic"]
    assert "https://api.openai.com/v1" in lines["openai"]


def test_doctor_hides_credentials_inside_base_urls() -> None:
    _code, out = run("doctor", OPENAI_BASE_URL="https://alice:hunter2@gateway.example/v1")
    assert "hunter2" not in out and "alice" not in out
    assert "https://[redacted]@gateway.example/v1" in out


@pytest.mark.local_model
def test_doctor_reports_the_local_model_loadable() -> None:
    code, out = run("doctor")
    assert code == 0, out
    assert "SmolLM2-135M-Instruct.Q4_1.gguf" in out and "loadable" in out
    assert "usable: local model" in out


@pytest.mark.local_model
def test_doctor_prints_no_llama_cpp_log_lines() -> None:
    import subprocess
    import sys

    # A fresh process: llama.cpp logs while it loads a model, from C, straight to the process's stderr.
    done = subprocess.run([sys.executable, "-c", "from cascadeflow.cli import main; main()", "doctor"],
                          check=False, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "250"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "usable: local model" in done.stdout
    assert "llama" not in done.stderr.lower() and "n_ctx" not in done.stdout + done.stderr


def test_doctor_fails_when_nothing_is_usable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    code, out = run("doctor", "--local-model", str(tmp_path / "missing.gguf"))
    assert code == 1
    assert "nothing usable" in out and 'pip install "cascadeflow[local]"' in out


def test_doctor_pings_base_urls_without_sending_the_key(openai_server) -> None:  # type: ignore[no-untyped-def]
    code, out = run("doctor", "--ping", "--local-model", "/nonexistent.gguf",
                    OPENAI_API_KEY=SECRET, OPENAI_BASE_URL=openai_server.base_url)
    assert code == 0, out
    openai_line = next(line for line in out.splitlines() if line.startswith("│ openai "))
    assert "reachable (HTTP" in openai_line and "unreachable" not in openai_line
    assert all(SECRET not in json.dumps(dict(r.headers)) for r in openai_server.requests)


def _server_or_skip(url: str, kind: str) -> None:
    _code, out = run("doctor", f"--{kind}", url, "--local-model", "/nonexistent.gguf")
    line = next(line for line in out.splitlines() if line.startswith(f"│ {kind} "))
    if "unreachable" in line and not os.environ.get("CI"):
        pytest.skip(f"no {kind} server at {url}")
    assert "reachable" in line and "unreachable" not in line and " ok " in line


@pytest.mark.redis
def test_doctor_checks_redis_when_given() -> None:
    _server_or_skip("redis://127.0.0.1:6379/0", "redis")


@pytest.mark.postgres
def test_doctor_checks_postgres_when_given() -> None:
    _server_or_skip("postgresql://postgres@127.0.0.1:5432/test", "postgres")


def test_doctor_reports_an_unreachable_backend() -> None:
    _code, out = run("doctor", "--redis", "redis://127.0.0.1:1/0", "--local-model", "/nonexistent.gguf")
    line = next(line for line in out.splitlines() if line.startswith("│ redis "))
    assert "unreachable" in line and "missing" in line


def test_chat_writes_an_audit_record_to_the_default_log(openai_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    clear_provider_cache()
    openai_server.enqueue(text="Paris", usage={"input": 10, "output": 1})
    log = tmp_path / "chat-audit.jsonl"
    code, out = run("chat", "Capital of France?", "--model", "openai/gpt-4o-mini", OPENAI_API_KEY=SECRET,
                    OPENAI_BASE_URL=openai_server.base_url, CASCADEFLOW_AUDIT_PATH=str(log))
    openai_server.enqueue(status=500, error="upstream down")
    failed, _ = run("chat", "Capital of Spain?", "--model", "openai/gpt-4o-mini", OPENAI_API_KEY=SECRET,
                    OPENAI_BASE_URL=openai_server.base_url, CASCADEFLOW_AUDIT_PATH=str(log))
    clear_provider_cache()
    assert code == 0 and failed == 1, out
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["action"], r["model_selected"]) for r in records] == [("allow", "openai/gpt-4o-mini"), ("error", None)]
    assert records[0]["input_tokens"] == 10 and SECRET not in log.read_text()


def test_chat_writes_no_audit_file_when_the_default_log_is_off(openai_server, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    clear_provider_cache()
    openai_server.enqueue(text="Paris", usage={"input": 10, "output": 1})
    monkeypatch.chdir(tmp_path)
    code, out = run("chat", "Capital of France?", "--model", "openai/gpt-4o-mini", OPENAI_API_KEY=SECRET,
                    OPENAI_BASE_URL=openai_server.base_url, CASCADEFLOW_AUDIT_PATH="off")
    clear_provider_cache()
    assert code == 0, out
    assert list(tmp_path.iterdir()) == []
