"""The zellinger cascades layout: one JSON line per query with every chain model's answer, label and cost.

The records carry their own cost_usd; each model's per-million rates are fitted from them (least squares
over tokens_in / tokens_out) and declared on its ModelConfig, so the price book reproduces the recorded
cost. `confidence_raw` is log scale: a token log-probability (ModelIntrinsicLogProb) becomes the answer's
`logprobs`; an asked confidence (AskModelConfidence) becomes `confidence = exp(raw)`.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
from pathlib import Path
from typing import Any

from cascadeflow.errors import ReplayDataError
from cascadeflow.messages import Message, TokenLogprob
from cascadeflow.models import ModelConfig
from cascadeflow.replay.converters.names import ModelResolver, priced_model
from cascadeflow.replay.format import RecordedAnswer, RecordedQuery, ReplayDataset

log = logging.getLogger(__name__)

FIT_TOLERANCE = 0.01  # max relative error of the fitted rates against a recorded cost before we warn


def _open_lines(path: Path) -> list[tuple[int, dict[str, Any]]]:
    if path.is_dir():
        files = sorted(path.glob("*.jsonl*"))
        raise ReplayDataError("give one <bench>.<chain>.<split>.jsonl(.gz) file, not a folder; found: "
                              + ", ".join(f.name for f in files), path=str(path))
    if not path.is_file():
        raise ReplayDataError(f"no such file: {path}", path=str(path))
    opener = gzip.open if path.suffix == ".gz" else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as lines:  # type: ignore[operator]
        for number, line in enumerate(lines, start=1):
            if line.strip():
                try:
                    rows.append((number, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise ReplayDataError(f"not valid JSON ({exc.msg})", path=str(path), line=number) from None
    if not rows:
        raise ReplayDataError("the file is empty", path=str(path), line=1)
    return rows


def _answer(raw: dict[str, Any], signal: str, where: str, path: Path, line: int) -> RecordedAnswer:
    correct = raw.get("correct")
    if not isinstance(correct, bool):
        raise ReplayDataError(f"{where}: \"correct\" must be true or false, got {correct!r}", path=str(path),
                              line=line)
    content = str(raw.get("answer", ""))
    conf = raw.get("confidence_raw")
    logprobs, confidence = None, None
    if isinstance(conf, (int, float)) and not math.isnan(conf):
        if signal == "ModelIntrinsicLogProb":
            logprobs = (TokenLogprob(content, min(float(conf), 0.0)),)
        else:
            confidence = min(math.exp(conf), 1.0) if conf > -math.inf else 0.0
    return RecordedAnswer(content=content, correct=correct, input_tokens=raw.get("tokens_in"),
                          output_tokens=raw.get("tokens_out"), logprobs=logprobs, confidence=confidence,
                          latency_ms=raw.get("latency_ms"), cost_usd=raw.get("cost_usd"))


def fit_rates(samples: list[tuple[int, int, float]]) -> tuple[float, float, float]:
    """Per-million (input, output) rates that best reproduce the recorded costs, and the worst relative error."""
    try:
        import numpy as np
    except ImportError:
        raise ReplayDataError('fitting recorded rates needs numpy: pip install "cascadeflow[replay]"') from None
    tokens = np.array([[i, o] for i, o, _ in samples], dtype=float)
    costs = np.array([c for _, _, c in samples], dtype=float)
    (rate_in, rate_out), *_ = np.linalg.lstsq(tokens, costs, rcond=None)
    rate_in, rate_out = round(max(rate_in, 0.0) * 1e6, 4), round(max(rate_out, 0.0) * 1e6, 4)
    predicted = tokens @ np.array([rate_in, rate_out]) / 1e6
    worst = float(np.max(np.abs(predicted - costs) / np.maximum(costs, 1e-12)))
    return rate_in, rate_out, worst


def _model_config(name: str, samples: list[tuple[int, int, float]]) -> ModelConfig:
    rate_in, rate_out, worst = fit_rates(samples)
    if worst > FIT_TOLERANCE:
        log.warning("zellinger: fitted rates for %s reproduce recorded costs only within %.1f%%", name, worst * 100)
    return priced_model(name, rate_in, rate_out)  # at the rates its own recorded costs imply


def convert_zellinger(path: Path, resolver: ModelResolver | None = None) -> ReplayDataset:
    rows = _open_lines(path)
    model_names = list(rows[0][1].get("models", {}))
    if not model_names:
        raise ReplayDataError("expected \"models\": {name: {...}} on every line", path=str(path), line=rows[0][0])
    queries: list[RecordedQuery] = []
    samples: dict[str, list[tuple[int, int, float]]] = {m: [] for m in model_names}
    for line, row in rows:
        recorded = row.get("models") or {}
        missing = [m for m in model_names if m not in recorded]
        if missing:
            raise ReplayDataError(f"query {row.get('idx')!r} has no answer for model(s) {', '.join(missing)}",
                                  path=str(path), line=line)
        signal = str(row.get("conf_signal", ""))
        answers = {m: _answer(recorded[m], signal, f"model {m!r}", path, line) for m in model_names}
        for m, a in answers.items():
            if a.cost_usd is not None and a.input_tokens is not None and a.output_tokens is not None:
                samples[m].append((a.input_tokens, a.output_tokens, a.cost_usd))
        messages = tuple(msg for msg in (
            Message.system(row["system_prompt"]) if row.get("system_prompt") else None,
            Message.user(str(row.get("user_prompt", ""))),
        ) if msg is not None)
        queries.append(RecordedQuery(
            id=f"{row.get('benchmark')}-{row.get('split')}-{row.get('idx')}", messages=messages, answers=answers,
            split=row.get("split"), metadata={k: row.get(k) for k in ("benchmark", "chain", "idx", "conf_signal")}))
    unpriced = [m for m in model_names if not samples[m]]
    models = (resolver or ModelResolver()).resolve_all(unpriced, source=str(path)) if unpriced else {}
    models.update({m: _model_config(m, samples[m]) for m in model_names if samples[m]})
    models = {m: models[m] for m in model_names}
    stem = path.name.removesuffix(".gz").removesuffix(".jsonl")
    return ReplayDataset(name=f"zellinger-{stem}", models=models, queries=tuple(queries),
                         source=f"zellinger rational-llm-cascades ({path.name})",
                         notes="rates fitted from the recorded cost_usd; confidence_raw kept as logprobs or "
                               "confidence")
