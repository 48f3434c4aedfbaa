"""Turning an AuditRecord into the JSON a sink may store: content only when opted in, secrets never."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

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
    if not any(prefix in text for prefix in _SECRET_PREFIXES):
        return text
    return SECRET_PATTERN.sub(REDACTED, text)


def _redact_keys(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: (REDACTED if isinstance(k, str) and SECRET_KEY_PATTERN.search(k) else _redact_keys(v))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_keys(v) for v in value]
    return value


def _jsonable(value: Any) -> Any:
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    model_dump = getattr(value, "model_dump", None)  # pydantic models in caller metadata
    if callable(model_dump):
        return model_dump()
    return str(value)


_ENCODER = json.JSONEncoder(default=_jsonable, ensure_ascii=False, separators=(",", ":"))
_FIELDS = tuple(f.name for f in fields(AuditRecord))


def record_payload(record: AuditRecord, *, record_content: bool = False) -> dict[str, Any]:
    """The record as a dict, before secret-pattern redaction (see `record_line`)."""
    # Same shape as AuditRecord.to_dict() without dataclasses.asdict's deep copy (json.dumps copies anyway),
    # which keeps the audit write cheap enough to sit in every call's path.
    out = {name: getattr(record, name) for name in _FIELDS}
    for key, value in record.metadata.items():
        out.setdefault(key, value)
    if record.metadata:
        safe_metadata = _redact_keys(record.metadata)
        out["metadata"] = safe_metadata
        for key, value in safe_metadata.items():  # to_dict lifted metadata keys to the top level
            if key in out and out[key] is record.metadata.get(key):
                out[key] = value
    if not record_content:
        out.pop("prompt", None)
        out.pop("answer", None)
    return out


def record_line(record: AuditRecord, *, record_content: bool = False) -> str:
    """One JSON line (no trailing newline) with secrets removed."""
    payload = record_payload(record, record_content=record_content)
    return redact_text(_ENCODER.encode(payload))


def redacted_dict(record: AuditRecord, *, record_content: bool = False) -> dict[str, Any]:
    """The record as a JSON-compatible dict with secrets removed (for sinks that store fields)."""
    return json.loads(record_line(record, record_content=record_content))
