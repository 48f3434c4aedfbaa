"""Caller metadata is written into every audit record: what JSON cannot write is normalised before the call
is sent, or the call is refused with a typed error naming the problem (and nothing is sent)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cascadeflow import InvalidRequestError, ModelConfig
from cascadeflow.flow.client import CascadeFlow
from cascadeflow.runtime.pipeline import Runtime
from cascadeflow.testing import ScriptedProvider
from cascadeflow.trace.jsonl import JsonlSink
from cascadeflow.trace.metadata import MAX_METADATA_DEPTH, normalise_metadata

MODEL = ModelConfig(name="m", provider="openai", input_price_per_million=1, output_price_per_million=4)


def _facade(tmp_path):
    provider = ScriptedProvider(default="fine")
    sink = JsonlSink(tmp_path / "audit.jsonl")
    return CascadeFlow(runtime=Runtime(resolve_provider=provider.resolver(), sinks=[sink])), provider, sink


def _nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"next": value}
    return value


def _cycle() -> dict:
    loop: dict = {"name": "loop"}
    loop["self"] = loop
    return loop


@pytest.mark.parametrize(("metadata", "named"), [
    ({"incident": _cycle()}, "contains itself"),
    ({("service", "region"): "eu"}, "key of type tuple"),
    ({"deep": _nested(MAX_METADATA_DEPTH - 1)}, "nested more than"),
])
def test_metadata_no_record_could_hold_is_refused_before_sending(metadata, named, tmp_path):
    cf, provider, _sink = _facade(tmp_path)
    with pytest.raises(InvalidRequestError, match=named):
        cf.complete(model=MODEL, messages="why?", metadata=metadata)
    assert provider.requests == []


def test_values_json_cannot_write_are_normalised_and_the_record_is_written(tmp_path):
    import json

    cf, provider, sink = _facade(tmp_path)
    when = datetime(2026, 12, 7, 3, 4, 5, tzinfo=UTC)
    cf.complete(model=MODEL, messages="why?", metadata={
        "cost_cap": Decimal("0.25"), "opened": when, "hosts": ("db-1", "db-2"), 7: "seven", "ok": True})
    sink.close()
    (line,) = (tmp_path / "audit.jsonl").read_text().splitlines()
    written = json.loads(line)["metadata"]
    assert written == {"cost_cap": "0.25", "opened": str(when), "hosts": ["db-1", "db-2"], "7": "seven", "ok": True}
    assert len(provider.requests) == 1


def test_metadata_at_the_depth_limit_and_shared_values_are_accepted():
    shared = {"team": "sre"}
    assert normalise_metadata({"a": shared, "b": shared}) == {"a": {"team": "sre"}, "b": {"team": "sre"}}
    assert normalise_metadata({"deep": _nested(MAX_METADATA_DEPTH - 2)})["deep"]


def test_an_enum_member_is_stored_as_its_value_or_name():
    import enum

    class Task(enum.Enum):
        MEMORY_RECALL = "memory_recall"
        TRIAGE = 2
        OTHER = ("a", "b")

    assert normalise_metadata({"task_type": Task.MEMORY_RECALL, "n": Task.TRIAGE, "o": Task.OTHER}) == \
        {"task_type": "memory_recall", "n": 2, "o": "OTHER"}
