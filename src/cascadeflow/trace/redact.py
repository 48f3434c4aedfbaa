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


def _c_encoder() -> Any:
    """The C encoder `_ENCODER` uses, with the same settings, made directly (JSONEncoder.encode re-checks its
    options and builds closures on every call); call it as `"".join(encoder(obj, 0))`. A fresh markers dict
    per encoder, as encode() uses, keeps circular-reference detection and makes concurrent calls safe."""
    assert _c_make_encoder is not None and _c_encode_string is not None  # checked by the callers
    return _c_make_encoder({}, _jsonable, _c_encode_string, None, ":", ",", False, False, True)


def _encode(payload: dict[str, Any]) -> str:
    """`_ENCODER.encode(payload)`, through `_c_encoder` when the C encoder is there."""
    if _c_make_encoder is None or _c_encode_string is None:
        return _ENCODER.encode(payload)
    return "".join(_c_encoder()(payload, 0))


_FIELDS = tuple(f.name for f in fields(AuditRecord))
_FIELD_NAMES = frozenset(_FIELDS)
_values = attrgetter(*_FIELDS)


def record_payload(record: AuditRecord, *, record_content: bool = False) -> dict[str, Any]:
    """The record as a dict, before secret-pattern redaction (see `record_line`): `AuditRecord.to_dict()`'s
    shape (caller metadata also lifted to the top level, prompt and answer only when set) with secret-named
    metadata keys replaced, and prompt and answer only with `record_content`."""
    # Without dataclasses.asdict's deep copy (json.dumps copies anyway).
    out = dict(zip(_FIELDS, _values(record)))
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


_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}  # as json.dumps spells them (allow_nan)


def _float(value: float) -> str:
    """A float as json.dumps writes it: float.__repr__, which is also what raises TypeError for anything that
    is not a float (a Decimal, an int, a bool), so the record takes the general path."""
    text = float.__repr__(value)
    return _NON_FINITE[text] if text[-1] in "fn" else text  # only "nan", "inf" and "-inf" end so


def _int(value: int) -> str:
    if type(value) is not int:  # bool is an int json writes as true/false; subclasses take the general path
        raise TypeError(value)
    return int.__repr__(value)


def _template_line(record: AuditRecord, record_content: bool) -> tuple[str, str]:
    """(line, its values): `_encode(record_payload(record))` written field by field, the scalar fields
    straight into the line and the containers (metadata, tiers, prompt) through one C encoder, without the
    intermediate dict; and every string and container value of the line joined (each one starts and ends
    with a quote, brace or bracket), the only text a credential can be in. Half the cost of the general
    path on every audited call. TypeError when a field does not have the type AuditRecord declares (an int
    where a float belongs, a bool, a Decimal cost): `record_line` then takes the general path.
    tests/trace/test_redaction.py holds both paths to json.dumps byte for byte."""
    enc = _c_encode_string
    assert enc is not None  # checked by the caller
    container = _c_encoder()
    metadata = record.metadata
    if type(metadata) is not dict:
        raise TypeError(metadata)
    if metadata:
        safe = _redact_keys(metadata)
        meta_json = "".join(container(safe, 0))
        if _FIELD_NAMES.isdisjoint(safe):  # the usual metadata: every key lifted, as in the metadata object
            lifted = meta_json[1:-1]
        else:
            lifted = "".join(container({k: v for k, v in safe.items() if k not in _FIELD_NAMES}, 0))[1:-1]
    else:
        meta_json, lifted = "{}", ""
    tiers_json = "".join(container(record.tiers, 0))
    run_id, user_id, agent_id, error = record.run_id, record.user_id, record.agent_id, record.error
    requested, selected, remaining = record.model_requested, record.model_selected, record.budget_remaining
    values = [enc(record.timestamp), enc(record.request_id), "null" if run_id is None else enc(run_id),
              "null" if user_id is None else enc(user_id), enc(record.mode), enc(record.action),
              "null" if requested is None else enc(requested), "null" if selected is None else enc(selected),
              enc(record.routing_reason), enc(record.price_version), meta_json, tiers_json,
              "null" if agent_id is None else enc(agent_id), "null" if error is None else enc(error)]
    line = (f'{{"timestamp":{values[0]},"request_id":{values[1]},"run_id":{values[2]},"user_id":{values[3]},'
            f'"mode":{values[4]},"action":{values[5]},"model_requested":{values[6]},'
            f'"model_selected":{values[7]},"routing_reason":{values[8]},'
            f'"input_tokens":{_int(record.input_tokens)},"output_tokens":{_int(record.output_tokens)},'
            f'"cost_usd":{_float(record.cost_usd)},"latency_ms":{_float(record.latency_ms)},'
            f'"budget_remaining":{"null" if remaining is None else _float(remaining)},'
            f'"price_version":{values[9]},"metadata":{values[10]},"tiers":{values[11]},'
            f'"agent_id":{values[12]},"error":{values[13]}')
    if record_content:
        if record.prompt is not None:
            values.append("".join(container(record.prompt, 0)))
            line += f',"prompt":{values[-1]}'
        if record.answer is not None:
            values.append("".join(container(record.answer, 0)))
            line += f',"answer":{values[-1]}'
    return (f"{line},{lifted}}}" if lifted else line + "}"), "".join(values)


def _has_secret_prefix(text: str) -> bool:
    # _SECRET_PREFIXES spelled out: one expression instead of a generator over the tuple, on every line
    return ("sk-" in text or "gsk_" in text or "hf_" in text or "xai-" in text or "pplx-" in text
            or "AIza" in text or "AKIA" in text or "Bearer " in text)


def record_line(record: AuditRecord, *, record_content: bool = False) -> str:
    """One JSON line (no trailing newline) with secrets removed: `json.dumps` of `record_payload`, then
    credential-shaped substrings replaced."""
    if _c_make_encoder is not None and _c_encode_string is not None and type(record) is AuditRecord:
        try:
            line, values = _template_line(record, record_content)
        except TypeError:  # a field with a type the template does not write: the general path decides
            pass
        else:
            # The keys and numbers around the values hold no credential prefix (and no prefix spans a value's
            # quotes), so a line whose values hold none needs no regex pass.
            return SECRET_PATTERN.sub(REDACTED, line) if _has_secret_prefix(values) else line
    return redact_text(_encode(record_payload(record, record_content=record_content)))


def redacted_dict(record: AuditRecord, *, record_content: bool = False) -> dict[str, Any]:
    """The record as a JSON-compatible dict with secrets removed (for sinks that store fields)."""
    return json.loads(record_line(record, record_content=record_content))
