import json

import pytest
from audit_factory import make_record

from cascadeflow.trace.redact import _SECRET_PREFIXES, REDACTED, record_line, redact_text

SECRETS = [
    "sk-abcdefghijklmnopqrstuvwxyz012345",
    "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx_yz-0123",
    "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789",
    "gsk_abcdefghijklmnopqrstuvwxyz0123456789",
    "hf_abcdefghijklmnopqrstuvwxyzABCD",
    "xai-abcdefghijklmnopqrstuvwxyz",
    "AIzaSyAbCdEfGhIjKlMnOpQrStUvWxYz0123456",
    "AKIAABCDEFGHIJKLMNOP",
]


@pytest.mark.parametrize("secret", SECRETS)
def test_credential_shaped_values_are_dropped_wherever_they_appear(secret):
    record = make_record(metadata={"alert_id": "INC-1", "note": f"used key {secret} today", "nested": {"k": [secret]}},
                         error=f"AuthenticationError: invalid key {secret}")
    line = record_line(record)
    assert secret not in line
    entry = json.loads(line)
    assert entry["note"] == f"used key {REDACTED} today"
    assert entry["metadata"]["nested"] == {"k": [REDACTED]}
    assert entry["error"] == f"AuthenticationError: invalid key {REDACTED}"
    assert entry["alert_id"] == "INC-1"


def test_values_under_secret_named_keys_are_dropped_whatever_they_look_like():
    record = make_record(metadata={"api_key": "short", "Authorization": "Basic Zm9vOmJhcg==",
                                   "db_password": "hunter2", "headers": {"x-api-key": "k1"},
                                   "input_tokens_note": "kept"})
    entry = json.loads(record_line(record))
    assert entry["metadata"]["api_key"] == REDACTED and entry["api_key"] == REDACTED
    assert entry["metadata"]["Authorization"] == REDACTED
    assert entry["db_password"] == REDACTED
    assert entry["headers"] == {"x-api-key": REDACTED}
    assert entry["input_tokens_note"] == "kept"
    assert "hunter2" not in record_line(record)


def test_ordinary_text_that_merely_starts_like_a_key_is_kept():
    for text in ("disk-usage at 61%", "task-42", "sk-short", "hf_model", "pip install scikit-learn"):
        assert redact_text(text) == text


def test_bearer_tokens_in_messages_are_dropped():
    assert redact_text("header Bearer abc.def-ghi_jkl.mnopqrstu") == f"header Bearer {REDACTED}"


def test_the_callers_record_is_not_modified():
    record = make_record(metadata={"api_key": "short"})
    record_line(record)
    assert record.metadata == {"api_key": "short"}


def test_recorded_content_is_redacted_too():
    record = make_record(prompt=[{"role": "user", "content": "my key is gsk_abcdefghijklmnopqrstuvwxyz01"}],
                         answer="use hf_abcdefghijklmnopqrstuvwxyzAB")
    entry = json.loads(record_line(record, record_content=True))
    assert entry["prompt"] == [{"role": "user", "content": f"my key is {REDACTED}"}]
    assert entry["answer"] == f"use {REDACTED}"


def test_non_json_metadata_values_are_written_as_text_not_refused():
    from datetime import date
    from decimal import Decimal

    entry = json.loads(record_line(make_record(metadata={"day": date(2026, 6, 15), "amount": Decimal("0.10")})))
    assert entry["metadata"] == {"day": "2026-06-15", "amount": "0.10"}


@pytest.mark.parametrize("prefix", _SECRET_PREFIXES)
def test_every_listed_prefix_is_checked_before_the_secret_pattern_runs(prefix):
    body = "A1B2C3D4E5F6G7H8I9J0K1L2M3N4O5P6"  # long enough, and in every pattern's alphabet
    out = redact_text(f"note {prefix}{body} end")
    assert REDACTED in out and body[:16] not in out


def _reference_line(record, record_content=False):
    """The line as `json.dumps` writes the record's own dict (to_dict), secret-named metadata keys replaced."""
    from cascadeflow.trace.redact import SECRET_KEY_PATTERN, _jsonable

    def keys(value):
        if isinstance(value, dict):
            return {k: REDACTED if isinstance(k, str) and SECRET_KEY_PATTERN.search(k) else keys(v)
                    for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [keys(v) for v in value]
        return value

    out = record.to_dict()
    safe = keys(record.metadata)
    out["metadata"] = safe
    names = {f.name for f in _fields()}
    for key in record.metadata:
        if key not in names:  # lifted to the top level by to_dict
            out[key] = safe[key]
    if not record_content:
        out.pop("prompt", None)
        out.pop("answer", None)
    return redact_text(json.dumps(out, ensure_ascii=False, separators=(",", ":"), default=_jsonable))


def _fields():
    from dataclasses import fields

    from cascadeflow.trace.records import AuditRecord

    return fields(AuditRecord)


@pytest.mark.parametrize("overrides", [
    {},
    {"metadata": {}},
    {"metadata": {"nested": {"a": [1, 2.5, None, {"b": "ünïcødé ✓ 日本"}], "t": (1, "x")}, "n": None}},
    {"metadata": {"api_key": "plain", "inner": {"password": "p", "ok": [{"secret": 1}]}, "user": "Zoë"}},
    {"cost_usd": 1e-05, "latency_ms": 0.1 + 0.2, "budget_remaining": None, "input_tokens": 0},
    {"cost_usd": float("inf"), "latency_ms": float("nan"), "budget_remaining": -0.0},
    {"routing_reason": "line\nbreak \"quoted\" \\ back\tslash \x00 \u2028", "error": "sk-abcdefghijklmnopqrstuvwx"},
    {"metadata": {"day": __import__("datetime").date(2026, 6, 15), 3: "int key", "amount": 1.5e300}},
    {"run_id": None, "user_id": None, "agent_id": "agent-ü", "tiers": []},
    # metadata keys named like fields stay in the metadata object only; the rest are lifted
    {"metadata": {"error": "meta", "prompt": "p", "cost_usd": 9, "alert_id": "INC-1", "token": "Bearer x"}},
    {"model_requested": None, "model_selected": None, "error": "Bearer abcdefghijklmnopqrstuv failed"},
    # types AuditRecord does not declare take the general path and come out the same
    {"cost_usd": 0, "latency_ms": True, "input_tokens": False, "budget_remaining": __import__("decimal").Decimal("1.5")},
    {"user_id": 42, "tiers": ({"tier": 0},), "routing_reason": None},
    {"cost_usd": __import__("decimal").Decimal("NaN"), "latency_ms": __import__("decimal").Decimal("Infinity")},
    # attempt entries: the usual shape (written by its template), a reordered one, undeclared value types
    {"tiers": [{"tier": 0, "role": "cheap", "model": "m-ü", "max_tokens": 64, "cost_usd": 1e-07, "input_tokens": 3,
                "output_tokens": 0, "latency_ms": float("inf"), "status": "error", "error": "Timeout \"x\"\n",
                "finish_reason": None, "shrunk_from": 4096},
               {"role": "strong", "tier": 1, "model": "m", "max_tokens": 1, "cost_usd": 0.5, "input_tokens": 1,
                "output_tokens": 1, "latency_ms": 2.0, "status": "ok", "error": None, "finish_reason": "stop",
                "shrunk_from": None},
               {"tier": True, "role": "x", "model": "m", "max_tokens": 1.5, "cost_usd": 1, "input_tokens": 1,
                "output_tokens": 1, "latency_ms": 2, "status": "ok", "error": None, "finish_reason": "stop",
                "shrunk_from": None}]},
    {"metadata": __import__("collections").OrderedDict(alert_id="INC-7", api_key="k")},
])
@pytest.mark.parametrize("record_content", [False, True])
@pytest.mark.parametrize("content", ["both", "none", "prompt only"])
def test_the_line_is_byte_for_byte_json_dumps_of_the_records_dict(overrides, record_content, content):
    record = make_record(**overrides)
    if content != "none":
        record.prompt = [{"role": "user", "content": "héllo sk-abcdefghijklmnopqrstuvwx"}]
    if content == "both":
        record.answer = "ánswer"
    assert record_line(record, record_content=record_content) == _reference_line(record, record_content)


def test_no_key_of_the_line_holds_a_credential_prefix():
    # record_line scans only the line's values for a credential prefix: the keys around them (the record's and
    # an attempt entry's) must hold none
    from cascadeflow.trace.redact import _ATTEMPT_KEYS

    for name in (*(f.name for f in _fields()), *_ATTEMPT_KEYS):
        assert not any(prefix in f'"{name}":' for prefix in _SECRET_PREFIXES), name


def test_a_record_of_the_declared_types_is_written_without_the_general_path(monkeypatch):
    from cascadeflow.trace import redact

    record = make_record(metadata={"alert_id": "INC-1", "api_key": "k"}, error="sk-abcdefghijklmnopqrstuvwx")
    expected = _reference_line(record)

    def general(*args, **kwargs):
        raise AssertionError("took the general path")

    monkeypatch.setattr(redact, "record_payload", general)
    assert record_line(record) == expected


def _attempt(**overrides):
    entry = {"tier": 0, "role": "single", "model": "m", "max_tokens": 16, "cost_usd": 1e-06, "input_tokens": 3,
             "output_tokens": 1, "latency_ms": 2.5, "status": "ok", "error": None, "finish_reason": "stop",
             "shrunk_from": None}
    entry.update(overrides)
    return entry


# Pairs of records whose remembered pieces (redact._heads/_metas/_attempts) would be looked up with equal keys:
# True == 1 == 1.0, so only the type checks keep one's text from being reused for the other.
EQUAL_KEYS = [
    ({"tiers": [_attempt(tier=1)]}, {"tiers": [_attempt(tier=True)]}),
    ({"tiers": [_attempt(max_tokens=16)]}, {"tiers": [_attempt(max_tokens=16.0)]}),
    ({"tiers": [_attempt(shrunk_from=0)]}, {"tiers": [_attempt(shrunk_from=False)]}),
    ({"metadata": {"severity": "1"}}, {"metadata": {"severity": 1}}),
    ({"metadata": {"severity": 1}}, {"metadata": {"severity": True}}),
    ({"mode": "observe", "user_id": None}, {"mode": None, "user_id": "None"}),
    # the same pieces with a credential in them: the remembered flag must still send the line to the regex
    ({"model_selected": "sk-abcdefghijklmnopqrstuvwx"}, {"model_selected": "sk-abcdefghijklmnopqrstuvwx"}),
    ({"tiers": [_attempt(error="Bearer abcdefghijklmnopqrstuv")]},
     {"tiers": [_attempt(error="Bearer abcdefghijklmnopqrstuv")]}),
    ({"metadata": {"note": "key hf_abcdefghijklmnopqrstuv"}}, {"metadata": {"note": "key hf_abcdefghijklmnopqrstuv"}}),
]


@pytest.mark.parametrize(("first", "second"), EQUAL_KEYS)
def test_remembered_pieces_are_reused_only_for_values_of_the_same_type(first, second):
    from cascadeflow.trace import redact

    for memo in (redact._heads, redact._metas, redact._attempts):
        memo.clear()
    for overrides in (first, second, first, second):  # misses, then hits in both orders
        record = make_record(**overrides)
        assert record_line(record) == _reference_line(record)


def test_a_full_memo_is_emptied_and_lines_stay_exact(monkeypatch):
    from cascadeflow.trace import redact

    monkeypatch.setattr(redact, "MEMO_ENTRIES", 4)
    for i in range(40):
        record = make_record(model_selected=f"m-{i % 9}", metadata={"alert_id": f"INC-{i % 7}"},
                             tiers=[_attempt(model=f"m-{i % 5}", status="error" if i % 2 else "ok")])
        assert record_line(record) == _reference_line(record)
    assert all(len(memo) <= 4 for memo in (redact._heads, redact._metas, redact._attempts))
