"""Our own audit log (AuditRecord JSON lines written with content recording on) as a replay dataset.

Records with the same prompt are one query; each record contributes the answer of its `model_selected`.
Labels come from the record's metadata (`correct` true/false, or `score` with optional `scale`), which a
reviewer or a feedback hook adds. Queries not answered by every model seen in the log are left out.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from cascadeflow.errors import ConfigurationError, ReplayDataError
from cascadeflow.messages import coerce_messages
from cascadeflow.models import ModelConfig, as_model_config
from cascadeflow.replay.converters.names import ModelResolver
from cascadeflow.replay.format import RecordedAnswer, RecordedQuery, ReplayDataset

log = logging.getLogger(__name__)


def _label(meta: dict[str, Any], path: Path, line: int) -> dict[str, Any]:
    if "correct" in meta:
        if not isinstance(meta["correct"], bool):
            raise ReplayDataError(f"metadata.correct must be true or false, got {meta['correct']!r}",
                                  path=str(path), line=line)
        return {"correct": meta["correct"]}
    if "score" in meta:
        score, scale = meta["score"], meta.get("scale", [0, 1])
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            raise ReplayDataError(f"metadata.score must be a number, got {score!r}", path=str(path), line=line)
        return {"score": float(score), "scale": (float(scale[0]), float(scale[1]))}
    raise ReplayDataError("audit record has no label: add metadata.correct (true/false) or metadata.score",
                          path=str(path), line=line)


def _answer(record: dict[str, Any], path: Path, line: int) -> tuple[ModelConfig, RecordedAnswer]:
    try:
        cfg = as_model_config(record["model_selected"])
    except (KeyError, TypeError, ConfigurationError) as exc:
        raise ReplayDataError(f"audit record needs a valid model_selected ({exc})", path=str(path),
                              line=line) from None
    tier: dict[str, Any] = next((t for t in reversed(record.get("tiers") or []) if t.get("model") == cfg.id
                 and t.get("status", "ok") == "ok"), {})
    answer = RecordedAnswer(content=str(record["answer"]), input_tokens=tier.get("input_tokens"),
                            output_tokens=tier.get("output_tokens"), latency_ms=tier.get("latency_ms"),
                            cost_usd=tier.get("cost_usd"), finish_reason=tier.get("finish_reason") or "stop",
                            **_label(record.get("metadata") or {}, path, line))
    return cfg, answer


def convert_audit(path: Path, resolver: ModelResolver | None = None) -> ReplayDataset:
    """Our own audit log; its records name the priced model each answer came from, so `resolver` is not
    consulted (it is accepted so every format converts through one signature)."""
    if not path.is_file():
        raise ReplayDataError(f"no such audit log: {path}", path=str(path))
    grouped: dict[str, dict[str, Any]] = {}
    models: dict[str, ModelConfig] = {}
    with path.open(encoding="utf-8") as lines:
        for line, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ReplayDataError(f"not valid JSON ({exc.msg})", path=str(path), line=line) from None
            if record.get("prompt") is None or record.get("answer") is None:
                raise ReplayDataError("audit record has no prompt/answer: record content when logging "
                                      "(content recording must be on)", path=str(path), line=line)
            try:
                messages = coerce_messages(record["prompt"])
            except ConfigurationError as exc:
                raise ReplayDataError(f"bad prompt: {exc}", path=str(path), line=line) from None
            cfg, answer = _answer(record, path, line)
            models.setdefault(cfg.id, cfg)
            key = json.dumps([m.to_dict() for m in messages], sort_keys=True)
            entry = grouped.setdefault(key, {"messages": messages, "answers": {}, "id": record["request_id"]})
            entry["answers"][cfg.id] = answer
    if not grouped:
        raise ReplayDataError("the audit log is empty", path=str(path), line=1)
    queries = [RecordedQuery(id=e["id"], messages=e["messages"], answers=e["answers"])
               for e in grouped.values() if len(e["answers"]) == len(models)]
    if not queries:
        raise ReplayDataError(f"no prompt was answered by every model in the log ({', '.join(models)})",
                              path=str(path))
    log.info("audit: %d of %d prompts answered by every model", len(queries), len(grouped))
    return ReplayDataset(name=path.stem, models=models, queries=tuple(queries), source=f"audit log {path.name}")
