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



@pytest.mark.parametrize("text", [
    "connect failed: password=hunter2secret", "PassWord : hunter2secret", "pwd=hunter2secret;",
    "secret:\thunter2secret", "TOKEN  =  hunter2secret", "api_key=hunter2secret", "X-API-Key: hunter2secret",
    "access-key=hunter2secret", "pa\u017f\u017fword=hunter2secret", "api_\u212aey=hunter2secret",
    '{"input_tokens":40,"note":"retry with token= hunter2secret"}',
])
def test_name_value_pairs_are_dropped_in_free_text_and_in_lines(text):
    assert "hunter2secret" not in redact_text(text)
    entry = json.loads(record_line(make_record(metadata={"note": text}, error=f"RuntimeError: {text}")))
    assert "hunter2secret" not in entry["note"] and "hunter2secret" not in entry["error"]


@pytest.mark.parametrize("text", ['{"input_tokens":40,"output_tokens":12}', "the key to the rack is on the desk",
                                  "secret sauce", "tokens: 40"])
def test_text_without_a_name_value_pair_is_kept_as_it_is(text):
    assert redact_text(text) == text


def test_the_quick_test_for_name_value_pairs_never_misses_what_the_pattern_finds():
    import random

    from cascadeflow.trace.redact import _KEY_VALUE, _may_hold_key_value

    pieces = ["password", "PassWord", "pa\u017f\u017fword", "pwd", "PWD", "secret", "Token", "tokens", "api_key",
              "API-KEY", "ACCESSKEY", "\u212aey", "key", " ", "\t", "\u2003", "=", ":", '"', "x", "_", "\u00df", "\n"]
    rng = random.Random(7)
    for _ in range(20_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 8)))
        if _KEY_VALUE.search(text):
            assert _may_hold_key_value(text), text


def _reference_line(record, record_content=False):
    """The line as `json.dumps` writes the record's own dict (to_dict), secret-named metadata keys replaced."""
    from cascadeflow.trace.metadata import jsonable
    from cascadeflow.trace.redact import SECRET_KEY_PATTERN

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
    return redact_text(json.dumps(out, ensure_ascii=False, separators=(",", ":"), default=jsonable))


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
    # types AuditRecord does not declare come out as json.dumps writes them
    {"cost_usd": 0, "latency_ms": True, "input_tokens": False, "budget_remaining": __import__("decimal").Decimal("1.5")},
    {"user_id": 42, "tiers": ({"tier": 0},), "routing_reason": None},
    {"cost_usd": __import__("decimal").Decimal("NaN"), "latency_ms": __import__("decimal").Decimal("Infinity")},
    # attempt entries: the usual shape, a reordered one, undeclared value types
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
