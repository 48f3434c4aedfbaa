"""Format signal: JSON and JSON Schema validity when required, including JSON inside ``` fences."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cascadeflow.cascade.validators import format as format_check
from cascadeflow.errors import ConfigurationError
from cascadeflow.messages import Response, build_request

REQ = build_request("Return the incident as JSON.")
SCHEMA = {"type": "object", "properties": {"severity": {"enum": ["P0", "P1", "P2"]}, "title": {"type": "string"}},
          "required": ["severity", "title"]}


def resp(text: str) -> Response:
    return Response(content=text, model="m", provider="p")


def test_no_signal_when_json_is_not_required():
    assert format_check.check(REQ, resp("not json at all")) is None


def test_malformed_json_vetoes_when_required():
    sig = format_check.check(REQ, resp('{"severity": "P0", "title": '), required=True)
    assert sig.veto and "not valid JSON" in sig.reason


def test_valid_json_passes():
    sig = format_check.check(REQ, resp('{"severity": "P0"}'), required=True)
    assert sig.score == 1.0 and not sig.veto


def test_json_inside_a_fence_is_accepted():
    text = 'Here it is:\n```json\n{"severity": "P1", "title": "disk full"}\n```\n'
    sig = format_check.check(REQ, resp(text), schema=SCHEMA)
    assert sig.score == 1.0 and "schema" in sig.reason


def test_schema_violation_vetoes_with_the_path():
    sig = format_check.check(REQ, resp('{"severity": "P9", "title": "x"}'), schema=SCHEMA)
    assert sig.veto and "severity" in sig.reason


def test_missing_required_property_vetoes():
    sig = format_check.check(REQ, resp('{"severity": "P0"}'), schema=SCHEMA)
    assert sig.veto and "title" in sig.reason


def test_request_response_format_json_object_makes_it_required():
    req = REQ.with_(response_format={"type": "json_object"})
    assert format_check.check(req, resp("plain words")).veto


def test_request_response_format_json_schema_is_enforced():
    req = REQ.with_(response_format={"type": "json_schema", "json_schema": {"name": "inc", "schema": SCHEMA}})
    assert format_check.check(req, resp('{"severity": "P0", "title": "t"}')).score == 1.0
    assert format_check.check(req, resp('{"title": "t"}')).veto


def test_invalid_schema_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="invalid JSON Schema"):
        format_check.compile_schema({"type": "no-such-type"})


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@given(JSON_VALUES, st.booleans())
def test_any_json_value_passes_bare_or_fenced(value, fenced):
    text = json.dumps(value)
    if fenced:
        text = f"Here you go:\n```json\n{text}\n```\n"
    sig = format_check.check(REQ, resp(text), required=True)
    assert sig.score == 1.0 and not sig.veto
