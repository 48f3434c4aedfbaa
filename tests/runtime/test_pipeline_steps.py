"""Consumers plugged into the one pipeline: a record consumer (metrics) gets the call's one record, the same
object every audit sink gets."""

from __future__ import annotations

from cascadeflow import ModelConfig
from cascadeflow.runtime.client import CascadeFlow
from cascadeflow.runtime.pipeline import Runtime
from cascadeflow.testing import ScriptedProvider, capture_audit

MODEL = ModelConfig(name="m", provider="openai", input_price_per_million=1, output_price_per_million=4)


def test_a_record_consumer_gets_the_same_one_record_as_the_audit_sink():
    runtime = Runtime(resolve_provider=ScriptedProvider(default="fine").resolver())
    audit, metrics = capture_audit(runtime), capture_audit(runtime)
    result = CascadeFlow(runtime=runtime).complete(model=MODEL, messages="hello", metadata={"alert_id": "A-1"})
    (record,) = audit.records
    assert metrics.records == [record] and metrics.records[0] is record
    assert record.request_id == result.request_id and record.metadata == {"alert_id": "A-1"}
