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
