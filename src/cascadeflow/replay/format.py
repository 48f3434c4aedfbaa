"""The recorded-outcome format: a JSON Lines file of queries with each model's recorded answer and label.

Line 1 is a header naming the format and the models; every further line is one query. See docs/replay.md.
Loading validates every line and raises `ReplayDataError` carrying the file and line number.
"""

from __future__ import annotations

import gzip
import json
import math
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from os import PathLike
from pathlib import Path
from typing import Any

from cascadeflow.errors import ConfigurationError, ReplayDataError
from cascadeflow.messages import Message, TokenLogprob, coerce_messages
from cascadeflow.models import ModelConfig

FORMAT = "cascadeflow-replay/1"
BYTES_PER_TOKEN = 4  # documented ratio for unrecorded token counts: English text averages ~4 bytes per BPE token
MESSAGE_TOKENS = 4  # chat-template tokens per message when input tokens are estimated

_MODEL_FIELDS = {f.name for f in fields(ModelConfig)} - {"api_key", "extra"}
_ANSWER_KEYS = {"content", "correct", "score", "scale", "input_tokens", "output_tokens", "logprobs",
                "confidence", "latency_ms", "cost_usd", "finish_reason"}


@dataclass(frozen=True, slots=True)
class RecordedAnswer:
    """One model's recorded answer to one query, with its correctness label or score."""

    content: str
    correct: bool | None = None
    score: float | None = None
    scale: tuple[float, float] = (0.0, 1.0)
    input_tokens: int | None = None
    output_tokens: int | None = None
    logprobs: tuple[TokenLogprob, ...] | None = None
    confidence: float | None = None
    latency_ms: float | None = None
    cost_usd: float | None = None
    finish_reason: str = "stop"

    @property
    def quality(self) -> float:
        """1.0 / 0.0 for a correctness label; a score mapped onto [0, 1] by its scale."""
        if self.correct is not None:
            return 1.0 if self.correct else 0.0
        low, high = self.scale
        return (float(self.score) - low) / (high - low)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"content": self.content}
        if self.correct is not None:
            out["correct"] = self.correct
        else:
            out["score"], out["scale"] = self.score, list(self.scale)
        for key in ("input_tokens", "output_tokens", "confidence", "latency_ms", "cost_usd"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.logprobs is not None:
            out["logprobs"] = [{"token": t.token, "logprob": t.logprob} for t in self.logprobs]
        if self.finish_reason != "stop":
            out["finish_reason"] = self.finish_reason
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordedQuery:
    """One query: its messages, optional gold answer, metadata, split, and every model's recorded answer."""

    id: str
    messages: tuple[Message, ...]
    answers: Mapping[str, RecordedAnswer]
    gold: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    split: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "messages": [m.to_dict() for m in self.messages]}
        if self.gold is not None:
            out["gold"] = self.gold
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        if self.split is not None:
            out["split"] = self.split
        out["answers"] = {name: a.to_dict() for name, a in self.answers.items()}
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayDataset:
    """A header (name, source, model aliases -> priced ModelConfigs) and its queries."""

    name: str
    models: Mapping[str, ModelConfig]
    queries: tuple[RecordedQuery, ...]
    source: str = ""
    notes: str = ""

    def model(self, alias_or_name: str) -> tuple[str, ModelConfig]:
        """Find a model by its alias, bare name or 'provider/name' id; raise listing the known aliases."""
        if alias_or_name in self.models:
            return alias_or_name, self.models[alias_or_name]
        for alias, cfg in self.models.items():
            if alias_or_name in (cfg.name, cfg.id):
                return alias, cfg
        raise ConfigurationError(f"dataset {self.name!r} has no model {alias_or_name!r}; "
                                 f"its models are: {', '.join(self.models)}")

    async def evaluate_agent(self, agent: Any, *, concurrency: int = 4) -> Any:
        """`agent.evaluate(dataset)`: the agent's cascade over these recorded answers (replay.evaluation)."""
        from cascadeflow.replay.evaluation import evaluate  # the engine imports this module

        return await evaluate(agent, self, concurrency=concurrency)

    async def tune_agent(self, agent: Any, **options: Any) -> Any:
        """`agent.tune_threshold(dataset, ...)`: `cascadeflow.replay.tune_threshold` on this dataset."""
        from cascadeflow.replay.tuning import tune_threshold  # the engine imports this module

        return await tune_threshold(agent, self, **options)

    def subset(self, queries: Iterable[RecordedQuery], name: str | None = None) -> ReplayDataset:
        return ReplayDataset(name=name or self.name, models=self.models, queries=tuple(queries),
                             source=self.source, notes=self.notes)

    def split(self, name: str) -> ReplayDataset:
        chosen = [q for q in self.queries if q.split == name]
        if not chosen:
            known = sorted({q.split for q in self.queries if q.split is not None})
            raise ConfigurationError(f"dataset {self.name!r} has no query in split {name!r}; "
                                     f"splits present: {', '.join(known) or 'none'}")
        return self.subset(chosen, f"{self.name}[{name}]")

    def halves(self, seed: int = 0) -> tuple[ReplayDataset, ReplayDataset]:
        """A fixed random half and its complement (seeded, so every run draws the same halves)."""
        order = list(range(len(self.queries)))
        random.Random(seed).shuffle(order)
        cut = len(order) // 2
        first = sorted(order[:cut])
        second = sorted(order[cut:])
        return (self.subset([self.queries[i] for i in first], f"{self.name}[half A seed {seed}]"),
                self.subset([self.queries[i] for i in second], f"{self.name}[half B seed {seed}]"))

    def folds(self, k: int, seed: int = 0) -> list[tuple[ReplayDataset, ReplayDataset]]:
        """k (train, test) pairs of a fixed random partition: every query is tested exactly once."""
        if not 2 <= k <= len(self.queries):
            raise ConfigurationError(f"folds: k must be between 2 and the number of queries, got {k}")
        order = list(range(len(self.queries)))
        random.Random(seed).shuffle(order)
        parts = [sorted(order[i::k]) for i in range(k)]
        out = []
        for i, part in enumerate(parts):
            rest = sorted(j for n, other in enumerate(parts) if n != i for j in other)
            out.append((self.subset([self.queries[j] for j in rest], f"{self.name}[fold {i} train]"),
                        self.subset([self.queries[j] for j in part], f"{self.name}[fold {i} test]")))
        return out

    def header(self) -> dict[str, Any]:
        models = {alias: model_spec(cfg) for alias, cfg in self.models.items()}
        out: dict[str, Any] = {"format": FORMAT, "name": self.name, "models": models}
        if self.source:
            out["source"] = self.source
        if self.notes:
            out["notes"] = self.notes
        return out


def estimate_tokens(text: str) -> int:
    """Token count of an unrecorded text by the documented ratio (ceil of UTF-8 bytes / BYTES_PER_TOKEN)."""
    return max(1, math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN)) if text else 0


def estimate_message_tokens(messages: Sequence[Message]) -> int:
    return sum(estimate_tokens(m.text) + MESSAGE_TOKENS for m in messages)


def model_spec(cfg: ModelConfig) -> dict[str, Any]:
    """A ModelConfig as the header's JSON (name, provider, declared prices)."""
    out: dict[str, Any] = {"name": cfg.name, "provider": cfg.provider}
    for key in ("input_price_per_million", "output_price_per_million", "cost", "cost_per_token"):
        value = getattr(cfg, key)
        if value is not None:
            out[key] = float(value)
    return out


def dump_dataset(dataset: ReplayDataset, path: str | Path) -> None:
    """Write a dataset as recorded-outcome JSON Lines (gzip when the path ends in .gz)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as out:  # type: ignore[operator]
        out.write(json.dumps(dataset.header(), ensure_ascii=False) + "\n")
        for query in dataset.queries:
            out.write(json.dumps(query.to_dict(), ensure_ascii=False) + "\n")


def load_dataset(path: str | Path) -> ReplayDataset:
    """Read and validate a recorded-outcome file; every problem is a ReplayDataError with its line number."""
    path = Path(path)
    if not path.is_file():
        raise ReplayDataError(f"no such recorded-outcome file: {path}", path=str(path))
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as lines:  # type: ignore[operator]
        return parse_lines(lines, str(path))


def coerce_dataset(data: ReplayDataset | str | PathLike[str]) -> ReplayDataset:
    """A dataset as given, or loaded from a recorded-outcome file path."""
    if isinstance(data, ReplayDataset):
        return data
    if isinstance(data, (str, PathLike)):
        return load_dataset(Path(data))
    raise ConfigurationError(f"expected a ReplayDataset or the path of a recorded-outcome JSONL file, got "
                             f"{type(data).__name__}")


def parse_lines(lines: Iterable[str], path: str = "<data>") -> ReplayDataset:
    numbered = ((n, line) for n, line in enumerate(lines, start=1) if line.strip())
    first = next(numbered, None)
    if first is None:
        raise ReplayDataError("the file is empty: expected a header line {\"format\": \"" + FORMAT + "\", ...}",
                              path=path, line=1)
    header_line, header = first[0], _json(first[1], path, first[0])
    name, models, source, notes = _parse_header(header, path, header_line)
    queries, seen = [], set()
    for number, line in numbered:
        query = _parse_query(_json(line, path, number), models, path, number)
        if query.id in seen:
            raise ReplayDataError(f"duplicate query id {query.id!r}", path=path, line=number)
        seen.add(query.id)
        queries.append(query)
    if not queries:
        raise ReplayDataError("the file has a header but no queries", path=path, line=header_line)
    return ReplayDataset(name=name, models=models, queries=tuple(queries), source=source, notes=notes)


def _json(line: str, path: str, number: int) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise ReplayDataError(f"not valid JSON ({exc.msg} at column {exc.colno})", path=path, line=number) from None


def _parse_header(raw: Any, path: str, line: int) -> tuple[str, dict[str, ModelConfig], str, str]:
    if not isinstance(raw, dict) or "format" not in raw:
        raise ReplayDataError(f"unknown format: the first line must be a header with \"format\": \"{FORMAT}\" "
                              f"(convert other layouts with `cascadeflow replay convert --from ...`)",
                              path=path, line=line)
    if raw["format"] != FORMAT:
        raise ReplayDataError(f"unknown format {raw['format']!r}; this version reads {FORMAT!r}",
                              path=path, line=line)
    specs = raw.get("models")
    if not isinstance(specs, dict) or not specs:
        raise ReplayDataError("the header needs \"models\": {alias: {\"name\": ..., \"provider\": ...}}",
                              path=path, line=line)
    models = {}
    for alias, spec in specs.items():
        if not isinstance(spec, dict) or not set(spec) <= _MODEL_FIELDS:
            raise ReplayDataError(f"model {alias!r}: expected an object with keys among "
                                  f"{sorted(_MODEL_FIELDS)}", path=path, line=line)
        try:
            models[alias] = ModelConfig(**spec)
        except ConfigurationError as exc:
            raise ReplayDataError(f"model {alias!r}: {exc}", path=path, line=line) from None
    return str(raw.get("name") or Path(path).stem), models, str(raw.get("source", "")), str(raw.get("notes", ""))


def _parse_query(raw: Any, models: Mapping[str, ModelConfig], path: str, line: int) -> RecordedQuery:
    if not isinstance(raw, dict):
        raise ReplayDataError("a query line must be a JSON object", path=path, line=line)
    qid = raw.get("id")
    if not isinstance(qid, (str, int)) or isinstance(qid, bool) or qid == "":
        raise ReplayDataError("a query needs an \"id\" (string or integer)", path=path, line=line)
    try:
        messages = coerce_messages(raw.get("messages"))  # type: ignore[arg-type]
    except (ConfigurationError, TypeError) as exc:
        raise ReplayDataError(f"query {qid!r}: bad \"messages\": {exc}", path=path, line=line) from None
    answers = raw.get("answers")
    if not isinstance(answers, dict):
        raise ReplayDataError(f"query {qid!r}: \"answers\" must be an object keyed by model alias",
                              path=path, line=line)
    missing = [alias for alias in models if alias not in answers]
    if missing:
        raise ReplayDataError(f"query {qid!r} has no answer for model(s) {', '.join(missing)}; every query "
                              f"needs an answer from every model in the header", path=path, line=line)
    unknown = [alias for alias in answers if alias not in models]
    if unknown:
        raise ReplayDataError(f"query {qid!r} answers for model(s) {', '.join(unknown)} not declared in the "
                              f"header", path=path, line=line)
    parsed = {alias: _parse_answer(answers[alias], f"query {qid!r}, model {alias!r}", path, line)
              for alias in models}
    metadata = raw.get("metadata") or {}
    split = raw.get("split")
    gold = raw.get("gold")
    if not isinstance(metadata, dict) or (split is not None and not isinstance(split, str)):
        raise ReplayDataError(f"query {qid!r}: \"metadata\" must be an object and \"split\" a string",
                              path=path, line=line)
    return RecordedQuery(id=str(qid), messages=messages, answers=parsed,
                         gold=None if gold is None else str(gold), metadata=metadata, split=split)


def _number(value: Any, what: str, path: str, line: int, *, integer: bool = False) -> Any:
    if value is None:
        return None
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or (not integer and math.isnan(value)) or value < 0:
        kind = "a non-negative integer" if integer else "a non-negative number"
        raise ReplayDataError(f"{what} must be {kind} or null, got {value!r}", path=path, line=line)
    return value


def _parse_answer(raw: Any, where: str, path: str, line: int) -> RecordedAnswer:
    if not isinstance(raw, dict):
        raise ReplayDataError(f"{where}: an answer must be an object", path=path, line=line)
    extra = set(raw) - _ANSWER_KEYS
    if extra:
        raise ReplayDataError(f"{where}: unknown key(s) {sorted(extra)}; allowed: {sorted(_ANSWER_KEYS)}",
                              path=path, line=line)
    content = raw.get("content")
    if not isinstance(content, str):
        raise ReplayDataError(f"{where}: \"content\" must be a string", path=path, line=line)
    correct, score, scale = _parse_label(raw, where, path, line)
    confidence = raw.get("confidence")
    if confidence is not None and (isinstance(confidence, bool) or not isinstance(confidence, (int, float))
                                   or not 0.0 <= confidence <= 1.0):
        raise ReplayDataError(f"{where}: \"confidence\" must be a number in [0, 1], got {confidence!r}",
                              path=path, line=line)
    return RecordedAnswer(
        content=content, correct=correct, score=score, scale=scale,
        input_tokens=_number(raw.get("input_tokens"), f"{where}: input_tokens", path, line, integer=True),
        output_tokens=_number(raw.get("output_tokens"), f"{where}: output_tokens", path, line, integer=True),
        logprobs=_parse_logprobs(raw.get("logprobs"), where, path, line), confidence=confidence,
        latency_ms=_number(raw.get("latency_ms"), f"{where}: latency_ms", path, line),
        cost_usd=_number(raw.get("cost_usd"), f"{where}: cost_usd", path, line),
        finish_reason=str(raw.get("finish_reason") or "stop"),
    )


def _parse_label(raw: dict[str, Any], where: str, path: str, line: int) -> tuple[bool | None, float | None,
                                                                                   tuple[float, float]]:
    if "correct" in raw and raw["correct"] is not None:
        if not isinstance(raw["correct"], bool):
            raise ReplayDataError(f"{where}: \"correct\" must be true or false, got {raw['correct']!r} "
                                  f"(for graded answers use \"score\" with \"scale\")", path=path, line=line)
        return raw["correct"], None, (0.0, 1.0)
    score = raw.get("score")
    if score is None:
        raise ReplayDataError(f"{where}: needs a label: \"correct\": true/false, or \"score\" with \"scale\"",
                              path=path, line=line)
    scale = raw.get("scale", [0.0, 1.0])
    if (isinstance(score, bool) or not isinstance(score, (int, float)) or not isinstance(scale, list)
            or len(scale) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in scale)
            or scale[0] >= scale[1] or not scale[0] <= score <= scale[1]):
        raise ReplayDataError(f"{where}: \"score\" must be a number inside \"scale\" [low, high], got "
                              f"score={score!r} scale={scale!r}", path=path, line=line)
    return None, float(score), (float(scale[0]), float(scale[1]))


def _parse_logprobs(raw: Any, where: str, path: str, line: int) -> tuple[TokenLogprob, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise ReplayDataError(f"{where}: \"logprobs\" must be a list of {{\"token\", \"logprob\"}}",
                              path=path, line=line)
    out = []
    for item in raw:
        value = item.get("logprob") if isinstance(item, dict) else None
        if not isinstance(item, dict) or not isinstance(item.get("token"), str) \
                or isinstance(value, bool) or not isinstance(value, (int, float)) or value > 0:
            raise ReplayDataError(f"{where}: each logprob needs a string \"token\" and a \"logprob\" <= 0, "
                                  f"got {item!r}", path=path, line=line)
        out.append(TokenLogprob(item["token"], float(value)))
    return tuple(out)


def iter_answers(dataset: ReplayDataset, alias: str) -> Iterator[tuple[RecordedQuery, RecordedAnswer]]:
    for query in dataset.queries:
        yield query, query.answers[alias]
