"""Every harness test starts and ends with a reset harness (SDKs un-patched, default settings)."""

from __future__ import annotations

import pytest

from cascadeflow import harness


@pytest.fixture(autouse=True)
def clean_harness(monkeypatch, tmp_path):
    monkeypatch.delenv("CASCADEFLOW_MODE", raising=False)
    monkeypatch.delenv("CASCADEFLOW_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray cascadeflow.toml, and the default audit log lands in tmp_path
    harness.reset()
    yield
    harness.reset()


@pytest.fixture
def audit_path(tmp_path):
    return tmp_path / "audit.jsonl"
