"""Fixtures for the replay tests; the data helpers live in replay_fixtures.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from replay_fixtures import HEADER, answer, write_jsonl


@pytest.fixture
def tiny_rows() -> list[dict]:
    return [
        {"id": "q1", "messages": [{"role": "user", "content": "2+2?"}], "gold": "4", "split": "train",
         "answers": {"cheap": answer("4", True), "strong": answer("4", True)}},
        {"id": "q2", "messages": [{"role": "user", "content": "3*3?"}], "split": "test",
         "answers": {"cheap": answer("6", False), "strong": answer("9", True)}},
    ]


@pytest.fixture
def tiny_path(tmp_path: Path, tiny_rows: list[dict]) -> Path:
    return write_jsonl(tmp_path / "tiny.jsonl", [HEADER, *tiny_rows])
