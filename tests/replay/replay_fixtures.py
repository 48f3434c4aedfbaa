"""Builders of small recorded datasets written by the tests themselves (no shared data is read)."""

from __future__ import annotations

import json
from pathlib import Path

HEADER = {
    "format": "cascadeflow-replay/1",
    "name": "tiny",
    "models": {
        "cheap": {"name": "cheap-model", "provider": "together", "input_price_per_million": 1.0,
                  "output_price_per_million": 2.0},
        "strong": {"name": "strong-model", "provider": "together", "input_price_per_million": 10.0,
                   "output_price_per_million": 20.0},
    },
}


def answer(content: str, correct: bool, tin: int = 100, tout: int = 10, **extra):
    return {"content": content, "correct": correct, "input_tokens": tin, "output_tokens": tout, **extra}


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path
