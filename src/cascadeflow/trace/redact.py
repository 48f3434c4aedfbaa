"""Turning an AuditRecord into the JSON a sink may store: content only when opted in, secrets never."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import fields
from operator import attrgetter
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
    # _SECRET_PREFIXES spelled out: one expression instead of a generator over the tuple, on every line
    if not ("sk-" in text or "gsk_" in text or "hf_" in text or "xai-" in text or "pplx-" in text
            or "AIza" in text or "AKIA" in text or "Bearer " in text):
        return text
    return SECRET_PATTERN.sub(REDACTED, text)


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


def _jsonable(value: Any) -> Any:
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    model_dump = getattr(value, "model_dump", None)  # pydantic models in caller metadata
    if callable(model_dump):
        return model_dump()
    return str(value)


_ENCODER = json.JSONEncoder(default=_jsonable, ensure_ascii=False, separators=(",", ":"))
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_c_encode_string = getattr(json.encoder, "c_encode_basestring", None)


def _encode(payload: dict[str, Any]) -> str:
    """`_ENCODER.encode(payload)`: the same C encoder with the same settings, made directly (JSONEncoder.encode
    re-checks its options and builds closures on every call). A fresh markers dict per call, as encode() uses,
    keeps circular-reference detection and makes concurrent calls safe."""
    if _c_make_encoder is None or _c_encode_string is None:
        return _ENCODER.encode(payload)
    return "".join(_c_make_encoder({}, _jsonable, _c_encode_string, None, ":", ",", False, False, True)(payload, 0))


_FIELDS = tuple(f.name for f in fields(AuditRecord))
_values = attrgetter(*_FIELDS)


def record_payload(record: AuditRecord, *, record_content: bool = False) -> dict[str, Any]:
    """The record as a dict, before secret-pattern redaction (see `record_line`)."""
    # Same shape as AuditRecord.to_dict() without dataclasses.asdict's deep copy (json.dumps copies anyway),
    # which keeps the audit write cheap enough to sit in every call's path.
    out = dict(zip(_FIELDS, _values(record)))
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
    return redact_text(_encode(payload))


def redacted_dict(record: AuditRecord, *, record_content: bool = False) -> dict[str, Any]:
    """The record as a JSON-compatible dict with secrets removed (for sinks that store fields)."""
    return json.loads(record_line(record, record_content=record_content))
