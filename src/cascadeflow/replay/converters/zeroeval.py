"""ZeroEval's result layout: `<task>/<model>.json(.gz)` generations plus a `labels.csv` of correctness."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path
from typing import Any

from cascadeflow.errors import ReplayDataError
from cascadeflow.messages import Message
from cascadeflow.replay.converters.names import ModelResolver
from cascadeflow.replay.format import RecordedAnswer, RecordedQuery, ReplayDataset


def _load_json(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:  # type: ignore[operator]
            data = json.load(handle)
    except (json.JSONDecodeError, OSError) as exc:
        raise ReplayDataError(f"cannot read ZeroEval results: {exc}", path=str(path)) from None
    if not isinstance(data, list):
        raise ReplayDataError("ZeroEval results must be a JSON array of records", path=str(path), line=1)
    return data


def _labels(path: Path) -> dict[tuple[str, str], bool]:
    if not path.is_file():
        raise ReplayDataError("labels.csv not found next to the ZeroEval result folder", path=str(path))
    out = {}
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if not {"model", "id", "correct"} <= set(reader.fieldnames or ()):
            raise ReplayDataError("labels.csv needs columns model, id, correct", path=str(path), line=1)
        for row in reader:
            if row["correct"] not in ("0", "1"):
                raise ReplayDataError(f"correct must be 0 or 1, got {row['correct']!r}", path=str(path),
                                      line=reader.line_num)
            out[(row["model"], row["id"])] = row["correct"] == "1"
    return out


def _result_files(root: Path) -> list[Path]:
    files = sorted(p for p in root.rglob("*.json*") if p.name.endswith((".json", ".json.gz")))
    if not files:
        raise ReplayDataError("no ZeroEval result files (<model>.json or .json.gz) found", path=str(root))
    return files


def _model_name(path: Path) -> str:
    return path.name.removesuffix(".gz").removesuffix(".json")


def convert_zeroeval(path: Path, resolver: ModelResolver | None = None) -> ReplayDataset:
    root = path if path.is_dir() else path.parent
    files = _result_files(root)
    priced = (resolver or ModelResolver()).resolve_all((_model_name(f) for f in files), source=str(root))
    labels = _labels(root / "labels.csv" if (root / "labels.csv").is_file() else root.parent / "labels.csv")
    by_query: dict[str, dict[str, Any]] = {}
    names = []
    for file in files:
        model = _model_name(file)
        names.append(model)
        for number, record in enumerate(_load_json(file), start=1):
            qid = str(record.get("id") or record.get("session_id") or "")
            if (model, qid) not in labels:
                raise ReplayDataError(f"record {qid!r} of {model} has no row in labels.csv", path=str(file),
                                      line=number)
            output = record.get("output") or [""]
            entry = by_query.setdefault(qid, {"record": record, "answers": {}})
            entry["answers"][model] = RecordedAnswer(content=str(output[0]), correct=labels[(model, qid)])
    queries = []
    for qid, entry in by_query.items():
        missing = [m for m in names if m not in entry["answers"]]
        if missing:
            raise ReplayDataError(f"query {qid!r} has no result from {', '.join(missing)}", path=str(root))
        record = entry["record"]
        history = record.get("chat_history") or [record.get("question", "")]
        gold = str(record.get("answer", "")).lstrip("#").strip() or None
        queries.append(RecordedQuery(id=str(qid), messages=(Message.user(str(history[0])),),
                                     answers=entry["answers"], gold=gold,
                                     metadata={"question": record.get("question"), "task": record.get("dataset")}))
    name = root.name if root.name.startswith("zeroeval") else f"zeroeval-{root.name}"
    return ReplayDataset(name=name, models=priced,
                         queries=tuple(queries), source=f"ZeroEval results ({root.name})",
                         notes="no token counts recorded: tokens estimated, priced by the price book")
