"""`cascadeflow cache stats` / `clear` on a SQLite cache file written by a CascadeFlow, and on Redis."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cascadeflow import CacheConfig, CascadeFlow, ModelConfig
from cascadeflow.cli import app
from cascadeflow.cli import cache as cache_cli  # noqa: F401  registers `cache` on `app`
from cascadeflow.runtime.pipeline import Runtime
from cascadeflow.testing import ScriptedProvider

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cache"))
from services import REDIS_URL, require_redis

MODEL = ModelConfig(name="big", provider="openai", input_price_per_million=10, output_price_per_million=40)


def fill(config: CacheConfig) -> None:
    provider = ScriptedProvider({"big": ["disk full on db-1: rotate the logs"]})
    flow = CascadeFlow(runtime=Runtime(resolve_provider=provider.resolver()), cache_config=config)
    for _ in range(3):
        flow.complete(MODEL, "why is db-1 alerting?")
    flow.cache.close()


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_stats_reports_entries_hits_and_savings_then_clear_empties_the_file(tmp_path):
    path = str(tmp_path / "cache.sqlite3")
    fill(CacheConfig(backend="sqlite", sqlite_path=path))
    code, out = run("cache", "stats", "--path", path, "--json")
    assert code == 0, out
    figures = json.loads(out)
    assert figures["entries"] == 1 and figures["hits"] == 2 and figures["misses"] == 1
    assert figures["saved_usd"] > 0 and figures["hit_rate"] == pytest.approx(2 / 3)
    code, out = run("cache", "stats", "--path", path)
    assert code == 0 and "hit rate" in out and "66.7%" in out
    code, out = run("cache", "clear", "--path", path)
    assert code == 0 and "removed 1 cached answer" in out
    assert json.loads(run("cache", "stats", "--path", path, "--json")[1])["entries"] == 0


def test_stats_and_clear_on_redis_respect_the_prefix():
    require_redis()
    prefix = f"cftest:cli:{uuid.uuid4().hex[:10]}:"
    fill(CacheConfig(backend="redis", redis_url=REDIS_URL, key_prefix=prefix))
    code, out = run("cache", "stats", "--backend", "redis", "--redis-url", REDIS_URL, "--prefix", prefix, "--json")
    assert code == 0, out
    assert json.loads(out)["hits"] == 2
    code, out = run("cache", "clear", "--backend", "redis", "--redis-url", REDIS_URL, "--prefix", prefix)
    assert code == 0 and "removed 1" in out


def test_a_memory_backend_cannot_be_inspected_from_another_process():
    code, out = run("cache", "stats", "--backend", "memory")
    assert code != 0 and "memory cache lives inside its process" in out
