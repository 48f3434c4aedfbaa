"""Detection and redaction of personal data."""

from __future__ import annotations

import pytest

from cascadeflow.harness.pii import find_pii, iban_valid, luhn_valid, redact_text


@pytest.mark.parametrize("text, kind", [
    ("write to ops-team+alerts@corp.example.org today", "email"),
    ("card 4242-4242-4242-4242", "card"),
    ("amex 378282246310005", "card"),
    ("ssn 078-05-1120", "ssn"),
    ("iban DE89370400440532013000", "iban"),
    ("iban FR14 2004 1010 0505 0001 3M02 606", "iban"),
    ("call +1 (415) 555-0132", "phone"),
    ("ring 030 1234 5678", "phone"),
])
def test_each_kind_is_found(text, kind):
    assert [m.kind for m in find_pii(text)] == [kind]


@pytest.mark.parametrize("text", [
    "order 4242-4242-4242-4241",  # Luhn fails
    "iban DE89370400440532013001",  # mod 97 fails
    "release 2026-11-24 at 14:05, build 3.11.7, ticket 12345, port 8080",
    "ssn-like 000-12-3456 and 666-12-3456",
    "version 1.2.3.4 of the app",
])
def test_look_alikes_are_not_flagged(text):
    assert find_pii(text) == []


def test_redaction_replaces_each_match_and_counts_kinds():
    text, counts = redact_text("a@b.io and c@d.io, card 4111111111111111")
    assert text == "[REDACTED_EMAIL] and [REDACTED_EMAIL], card [REDACTED_CARD]"
    assert counts == {"email": 2, "card": 1}


def test_redaction_limited_to_given_kinds():
    text, counts = redact_text("a@b.io 078-05-1120", kinds=("ssn",))
    assert text == "a@b.io [REDACTED_SSN]" and counts == {"ssn": 1}


def test_checksums():
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")
    assert iban_valid("GB82 WEST 1234 5698 7654 32") and not iban_valid("GB82 WEST 1234 5698 7654 33")


def test_every_written_form_of_the_labelled_corpus_is_found_and_no_look_alike_is():
    from pii_corpus import corpus

    for case in corpus(per_variant=25, seed=11):
        found = find_pii(case.text)
        if case.kind is None:
            assert found == [], (case.variant, case.text)
            continue
        start = case.text.index(case.value)
        assert any(m.kind == case.kind and m.start <= start and m.end >= start + len(case.value) for m in found), \
            (case.variant, case.value, found)


def test_gdpr_redacts_a_phone_written_e164_and_a_personal_name_field():
    from cascadeflow.harness.compliance import load_compliance, redact_request
    from cascadeflow.messages import Message, Request

    request = Request((Message("user", "call me on +15551234567", name="jane.doe@example.com"),), model="m")
    gdpr = load_compliance("gdpr")
    redact, _block = gdpr.pii_found(request)
    assert redact == {"phone": 1, "email": 1}
    cleaned = redact_request(request, gdpr.pii_kinds).messages[0]
    assert "+15551234567" not in cleaned.text and cleaned.name == "redacted"
