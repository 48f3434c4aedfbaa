"""RouteLLM's eval layout: a CSV per benchmark with a prompt, a correctness column and a response per model.

Contaminated prompts (listed by RouteLLM in `contaminated_prompts.jsonl`, matched on `eval_prompt`) are
dropped, as RouteLLM does. The MMLU CSVs carry no response text: their answers are empty strings.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

from cascadeflow.errors import ReplayDataError
from cascadeflow.messages import Message
from cascadeflow.replay.converters.names import ModelResolver
from cascadeflow.replay.format import RecordedAnswer, RecordedQuery, ReplayDataset

log = logging.getLogger(__name__)

csv.field_size_limit(10_000_000)  # responses can be long


def _csv_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ReplayDataError(f"no such file or folder: {path}", path=str(path))
    found = sorted(path.glob("*_responses.csv")) or sorted(path.glob("responses/*.csv")) \
        or sorted(path.glob("*/*_responses.csv"))
    if not found:
        raise ReplayDataError("no RouteLLM CSV found: expected <bench>_responses.csv or responses/*.csv",
                              path=str(path))
    return found


def _contaminated(csv_path: Path) -> set[str]:
    for folder in (csv_path.parent, csv_path.parent.parent):
        listing = folder / "contaminated_prompts.jsonl"
        if listing.is_file():
            prompts = set()
            with listing.open(encoding="utf-8") as lines:
                for number, line in enumerate(lines, start=1):
                    if line.strip():
                        try:
                            prompts.add(json.loads(line)["eval_prompt"])
                        except (json.JSONDecodeError, KeyError):
                            raise ReplayDataError("expected a JSON object with \"eval_prompt\"",
                                                  path=str(listing), line=number) from None
            return prompts
    return set()


def _model_columns(header: list[str], csv_path: Path) -> list[str]:
    models = [c for c in header[1:] if not c.endswith("_response")]
    if header[:1] != ["prompt"] or not models:
        raise ReplayDataError("not a RouteLLM CSV: expected columns prompt, <model>..., <model>_response...",
                              path=str(csv_path), line=1)
    return models


def _label(value: str, csv_path: Path, line: int, column: str) -> bool:
    if value not in ("True", "False"):
        raise ReplayDataError(f"column {column!r} must be True or False, got {value!r}", path=str(csv_path),
                              line=line)
    return value == "True"


def convert_routellm(path: Path, resolver: ModelResolver | None = None) -> ReplayDataset:
    queries: list[RecordedQuery] = []
    models: list[str] = []
    dropped = 0
    for csv_path in _csv_files(path):
        skip = _contaminated(csv_path)
        with csv_path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise ReplayDataError("the CSV file is empty", path=str(csv_path), line=1)
            models = _model_columns(header, csv_path)
            index = {c: i for i, c in enumerate(header)}
            for row_number, row in enumerate(reader):
                line = reader.line_num
                prompt = row[0]
                if prompt in skip:
                    dropped += 1
                    continue
                answers = {}
                for model in models:
                    response = index.get(f"{model}_response")
                    answers[model] = RecordedAnswer(
                        content=row[response] if response is not None else "",
                        correct=_label(row[index[model]], csv_path, line, model))
                queries.append(RecordedQuery(
                    id=f"{csv_path.stem}-{row_number}", messages=(Message.user(prompt),), answers=answers,
                    metadata={"source_file": csv_path.name, "row": row_number}))
    log.info("routellm: dropped %d contaminated prompts, kept %d", dropped, len(queries))
    return ReplayDataset(
        name=path.stem if path.is_file() else path.name,
        models=(resolver or ModelResolver()).resolve_all(models, source=str(path)), queries=tuple(queries),
        source=f"RouteLLM eval CSV ({path.name}); {dropped} contaminated prompts dropped",
        notes="no token counts, costs or logprobs recorded: tokens estimated, priced by the price book")
