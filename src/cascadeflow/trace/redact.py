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


# Most of a line repeats from call to call: the models, the mode, the caller's metadata, each attempt's role and
# status. Their JSON text (and whether it holds a credential prefix) is remembered here, keyed by the values
# themselves, so a line is mostly joined from remembered pieces; only the stamps and the numbers are written
# afresh. An entry is stored only for values the encoder accepted (strings, None, and ints checked by type), so
# a lookup can only hit text made from equal values of the same types.
MEMO_ENTRIES = 512  # per memo; emptied when full (a process uses few models, modes and metadata shapes)
_heads: dict[tuple[Any, ...], tuple[str, str, str, bool]] = {}
_metas: dict[tuple[tuple[str, str], ...], tuple[str, str, bool]] = {}
_attempts: dict[tuple[Any, ...], tuple[str, str, bool]] = {}
# the attempt entry as the pipeline writes it (AttemptRecord.to_dict); any other shape takes the C encoder
_ATTEMPT_KEYS = ("tier", "role", "model", "max_tokens", "cost_usd", "input_tokens", "output_tokens", "latency_ms",
                 "status", "error", "finish_reason", "shrunk_from")


def _remember(memo: dict[Any, Any], key: Any, value: Any) -> Any:
    if len(memo) >= MEMO_ENTRIES:
        memo.clear()
    memo[key] = value
    return value


def _text(value: str | None) -> str:
    """A string field as JSON; TypeError for anything else (the general path then writes it)."""
    return "null" if value is None else _c_encode_string(value)  # type: ignore[misc]


def _head(record: AuditRecord) -> tuple[str, str, str, bool]:
    """The record's repeating string fields as three pieces of the line, and whether they hold a credential
    prefix: `"run_id":..,"routing_reason":..,"input_tokens":`, `,"price_version":..,"metadata":` and
    `,"agent_id":..,"error":`."""
    key = (record.run_id, record.user_id, record.mode, record.action, record.model_requested,
           record.model_selected, record.routing_reason, record.price_version, record.agent_id)
    found = _heads.get(key)
    if found is not None:
        return found
    v = [_text(value) for value in key]
    return _remember(_heads, key, (
        (f'"run_id":{v[0]},"user_id":{v[1]},"mode":{v[2]},"action":{v[3]},"model_requested":{v[4]},'
        f'"model_selected":{v[5]},"routing_reason":{v[6]},"input_tokens":'),
        f',"price_version":{v[7]},"metadata":', f',"agent_id":{v[8]},"error":',
        _has_secret_prefix("".join(v))))


def _metadata(metadata: dict[str, Any]) -> tuple[str, str, bool]:
    """(the metadata object, its members lifted to the top level, a credential prefix in either), remembered
    for metadata of string keys and string values (an alert id, a severity, the SDK's name)."""
    key = None
    items = metadata.items()
    for k, v in items:
        if type(k) is not str or type(v) is not str:
            break
    else:
        key = tuple(items)
        found = _metas.get(key)
        if found is not None:
            return found
    safe = _redact_keys(metadata)
    container = _c_encoder()
    meta_json = "".join(container(safe, 0))
    if _FIELD_NAMES.isdisjoint(safe):  # the usual metadata: every key lifted, as in the metadata object
        lifted = meta_json[1:-1]
    else:
        lifted = "".join(container({k: v for k, v in safe.items() if k not in _FIELD_NAMES}, 0))[1:-1]
    value = (meta_json, lifted, _has_secret_prefix(meta_json))
    return value if key is None else _remember(_metas, key, value)


def _attempt(entry: Any) -> tuple[str, bool]:
    """One attempt entry of the pipeline's shape as JSON, and whether it holds a credential prefix; TypeError
    for any other shape or type (the caller then encodes all the attempts with the C encoder)."""
    if type(entry) is not dict or tuple(entry) != _ATTEMPT_KEYS:
        raise TypeError(entry)
    tier, role, model, max_tokens, cost, inputs, outputs, latency, status, error, finish, shrunk = entry.values()
    if type(tier) is not int or not (max_tokens is None or type(max_tokens) is int) \
            or not (shrunk is None or type(shrunk) is int):
        raise TypeError(entry)  # checked before the lookup: True == 1 == 1.0 would find an int's entry
    key = (tier, role, model, max_tokens, status, error, finish, shrunk)
    found = _attempts.get(key)
    if found is None:
        v = [_text(role), _text(model), _text(status), _text(error), _text(finish)]
        found = _remember(_attempts, key, (
            (f'{{"tier":{tier},"role":{v[0]},"model":{v[1]},'
            f'"max_tokens":{"null" if max_tokens is None else max_tokens},"cost_usd":'),
            (f',"status":{v[2]},"error":{v[3]},"finish_reason":{v[4]},'
            f'"shrunk_from":{"null" if shrunk is None else shrunk}}}'),
            _has_secret_prefix("".join(v))))
    before_cost, after_latency, secret = found
    return (f'{before_cost}{_float(cost)},"input_tokens":{_int(inputs)},"output_tokens":{_int(outputs)},'
            f'"latency_ms":{_float(latency)}{after_latency}'), secret


def _tiers(tiers: Any) -> tuple[str, bool]:
    """The attempts list as JSON and whether it holds a credential prefix."""
    if type(tiers) is list:
        parts, secret = [], False
        try:
            for entry in tiers:
                text, entry_secret = _attempt(entry)
                parts.append(text)
                secret = secret or entry_secret
        except TypeError:
            pass
        else:
            return f'[{",".join(parts)}]', secret
    text = "".join(_c_encoder()(tiers, 0))
    return text, _has_secret_prefix(text)


def _template_line(record: AuditRecord, record_content: bool) -> tuple[str, bool]:
    """(line, whether it may hold a credential): `_encode(record_payload(record))` written field by field from
    remembered pieces (see `_heads`) and the per-call stamps and numbers, without the intermediate dict. The
    keys around the values hold no credential prefix and no prefix spans a value's quotes, so the values alone
    say whether the line needs the regex pass. TypeError when a field does not have the type AuditRecord
    declares (an int where a float belongs, a bool, a Decimal cost): `record_line` then takes the general path.
    tests/trace/test_redaction.py holds both paths to json.dumps byte for byte."""
    enc = _c_encode_string
    assert enc is not None  # checked by the caller
    metadata = record.metadata
    if type(metadata) is not dict:
        raise TypeError(metadata)
    meta_json, lifted, secret = _metadata(metadata) if metadata else ("{}", "", False)
    tiers_json, tiers_secret = _tiers(record.tiers)
    before_inputs, before_metadata, before_error, head_secret = _head(record)
    timestamp, request_id, error = enc(record.timestamp), enc(record.request_id), record.error
    error_json = "null" if error is None else enc(error)
    remaining = record.budget_remaining
    line = (f'{{"timestamp":{timestamp},"request_id":{request_id},{before_inputs}'
            f'{_int(record.input_tokens)},"output_tokens":{_int(record.output_tokens)},'
            f'"cost_usd":{_float(record.cost_usd)},"latency_ms":{_float(record.latency_ms)},'
            f'"budget_remaining":{"null" if remaining is None else _float(remaining)}{before_metadata}{meta_json},'
            f'"tiers":{tiers_json}{before_error}{error_json}')
    secret = secret or tiers_secret or head_secret or _has_secret_prefix(timestamp + request_id + error_json)
    if record_content:
        container = _c_encoder()
        if record.prompt is not None:
            prompt = "".join(container(record.prompt, 0))
            secret = secret or _has_secret_prefix(prompt)
            line += f',"prompt":{prompt}'
        if record.answer is not None:
            answer = "".join(container(record.answer, 0))
            secret = secret or _has_secret_prefix(answer)
            line += f',"answer":{answer}'
    return (f"{line},{lifted}}}" if lifted else line + "}"), secret


def _has_secret_prefix(text: str) -> bool:
    # _SECRET_PREFIXES spelled out: one expression instead of a generator over the tuple, on every line
    return ("sk-" in text or "gsk_" in text or "hf_" in text or "xai-" in text or "pplx-" in text
            or "AIza" in text or "AKIA" in text or "Bearer " in text)


def record_line(record: AuditRecord, *, record_content: bool = False) -> str:
    """One JSON line (no trailing newline) with secrets removed: `json.dumps` of `record_payload`, then
    credential-shaped substrings replaced."""
    if _c_make_encoder is not None and _c_encode_string is not None and type(record) is AuditRecord:
        try:
            line, secret = _template_line(record, record_content)
        except TypeError:  # a field with a type the template does not write: the general path decides
            pass
        else:
            return SECRET_PATTERN.sub(REDACTED, line) if secret else line
    return redact_text(_encode(record_payload(record, record_content=record_content)))


def redacted_dict(record: AuditRecord, *, record_content: bool = False) -> dict[str, Any]:
    """The record as a JSON-compatible dict with secrets removed (for sinks that store fields)."""
    return json.loads(record_line(record, record_content=record_content))
