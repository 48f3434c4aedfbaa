"""Turning an AuditRecord into the JSON a sink may store: content only when opted in, secrets never."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from cascadeflow.trace.metadata import jsonable
from cascadeflow.trace.records import AuditRecord

REDACTED = "[redacted]"

# Shapes of provider credentials. Secret bodies never contain `"` or `\`, so the pattern can be applied to an
# already-serialised JSON line without breaking its quoting (one regex pass instead of a walk over the record).
SECRET_PATTERN = re.compile(
    r"(?:sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{16,}"  # OpenAI, Anthropic, DeepSeek, ...
    r"|gsk_[A-Za-z0-9]{16,}"  # Groq
    r"|hf_[A-Za-z0-9]{16,}"  # Hugging Face
    r"|xai-[A-Za-z0-9]{16,}"  # xAI
    r"|pplx-[A-Za-z0-9]{16,}"  # Perplexity
    r"|AIza[0-9A-Za-z_\-]{30,}"  # Google
    r"|AKIA[0-9A-Z]{16}"  # AWS access key id
    r"|(?<=Bearer )[A-Za-z0-9._\-]{16,})"  # bearer tokens quoted inside error messages
)

# Literal prefixes of SECRET_PATTERN: substring tests are far cheaper than the regex on the usual clean line.
_SECRET_PREFIXES = ("sk-", "gsk_", "hf_", "xai-", "pplx-", "AIza", "AKIA", "Bearer ")

# Metadata keys whose values are secrets whatever they look like.
SECRET_KEY_PATTERN = re.compile(
    r"(?:^|[_\-.])(?:api[_\-]?key|apikey|authorization|password|passwd|secret|access[_\-]?token|"
    r"refresh[_\-]?token|bearer|private[_\-]?key)$",
    re.IGNORECASE,
)


def redact_text(text: str) -> str:
    """Replace every credential-shaped substring of `text`."""
    return SECRET_PATTERN.sub(REDACTED, text) if _has_secret_prefix(text) else text


_secret_keys: dict[str, bool] = {}  # metadata key -> SECRET_KEY_PATTERN matches it (callers reuse few keys)
MAX_CACHED_KEYS = 4096


def _is_secret_key(key: Any) -> bool:
    if not isinstance(key, str):
        return False
    found = _secret_keys.get(key)
    if found is None:
        if len(_secret_keys) >= MAX_CACHED_KEYS:
            _secret_keys.clear()
        found = _secret_keys[key] = SECRET_KEY_PATTERN.search(key) is not None
    return found


_SCALARS = frozenset({str, int, float, bool, type(None)})  # returned as they are: no keys inside


def _redact_keys(value: Any) -> Any:
    if isinstance(value, Mapping):
        # scalars skip the call and the Mapping ABC check (the usual metadata value is a string or a number)
        return {k: (REDACTED if _is_secret_key(k) else v if type(v) in _SCALARS else _redact_keys(v))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_keys(v) for v in value]
    return value


_FIELDS = tuple(f.name for f in fields(AuditRecord))


def record_payload(record: AuditRecord, *, record_content: bool = False) -> dict[str, Any]:
    """The record as a dict, before secret-pattern redaction (see `record_line`): `AuditRecord.to_dict()`'s
    shape (caller metadata also lifted to the top level, prompt and answer only when set) with secret-named
    metadata keys replaced, and prompt and answer only with `record_content`."""
    out = {name: getattr(record, name) for name in _FIELDS}  # not asdict's deep copy: json.dumps copies
    for key, value in record.metadata.items():
        out.setdefault(key, value)
    if record.metadata:
        safe_metadata = _redact_keys(record.metadata)
        out["metadata"] = safe_metadata
        for key, value in safe_metadata.items():  # to_dict lifted metadata keys to the top level
            if key in out and out[key] is record.metadata.get(key):
                out[key] = value
    if not record_content or record.prompt is None:
        out.pop("prompt", None)
    if not record_content or record.answer is None:
        out.pop("answer", None)
    return out


def _has_secret_prefix(text: str) -> bool:
    # _SECRET_PREFIXES spelled out: one expression instead of a generator over the tuple, on every line
    return ("sk-" in text or "gsk_" in text or "hf_" in text or "xai-" in text or "pplx-" in text
            or "AIza" in text or "AKIA" in text or "Bearer " in text)


def record_line(record: AuditRecord, *, record_content: bool = False) -> str:
    """One JSON line (no trailing newline) with secrets removed: `json.dumps` of `record_payload`, then
    credential-shaped substrings replaced."""
    line = json.dumps(record_payload(record, record_content=record_content), default=jsonable,
                      ensure_ascii=False, separators=(",", ":"))
    return redact_text(line)


def redacted_dict(record: AuditRecord, *, record_content: bool = False) -> dict[str, Any]:
    """The record as a JSON-compatible dict with secrets removed (for sinks that store fields)."""
    return json.loads(record_line(record, record_content=record_content))
