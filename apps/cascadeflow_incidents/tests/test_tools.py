"""Tools: typed declarations, the recorded backend's kind matching, timeouts and output budgets."""

from __future__ import annotations

import asyncio

import pytest

from cascadeflow import InvalidRequestError, ToolSpec
from cascadeflow_incidents.tools import (
    ALL_TOOLS,
    SUFFIXES,
    RecordedEvidence,
    Tool,
    Toolbox,
    ToolDeclaration,
    ToolLimits,
    recorded_toolbox,
)
from cascadeflow_incidents.tools.base import Param

EVIDENCE = {
    "eks_pods": {"pods": [{"name": "a-1", "namespace": "shop"}, {"name": "b-1", "namespace": "other"}]},
    "eks_pod_logs": {"pod_name": "a-1", "logs": "one\ntwo\nthree\n"},
    "datadog_logs": {"logs": [{"message": "ERROR boom", "status": "error", "service": "a"},
                              {"message": "ok", "status": "info", "service": "b"}]},
    "redis_info": {"clients": [1, 2, 3]},
}


def test_most_specific_suffix_claims_a_kind_and_the_rest_stay_generic() -> None:
    recorded = RecordedEvidence(EVIDENCE, SUFFIXES)
    assert recorded.claimed_by("eks_pod_logs") == "pod_logs"
    assert recorded.claimed_by("datadog_logs") == "logs"
    assert recorded.unclaimed() == ["redis_info"]


async def test_recorded_tools_filter_without_changing_the_payload_shape() -> None:
    box = recorded_toolbox(EVIDENCE)
    pods = await box.call("list_pods", {"namespace": "shop"})
    assert pods.data == {"pods": [{"name": "a-1", "namespace": "shop"}]} and pods.evidence_kind == "eks_pods"
    logs = await box.call("search_logs", {"level": "error"})
    assert [line["message"] for line in logs.data["logs"]] == ["ERROR boom"]
    tail = await box.call("get_pod_logs", {"pod": "a-1", "tail": 2})
    assert tail.data["logs"] == "two\nthree"


async def test_an_evidence_kind_without_a_tool_is_read_through_the_generic_tool() -> None:
    result = await recorded_toolbox(EVIDENCE).call("read_evidence", {"kind": "redis_info"})
    assert result.data == {"clients": [1, 2, 3]} and result.evidence_kind == "redis_info"
    missing = await recorded_toolbox(EVIDENCE).call("read_evidence", {"kind": "nope"})
    assert missing.data is None and "no evidence kind 'nope'" in missing.error


async def test_missing_evidence_is_an_error_result_not_an_exception() -> None:
    result = await recorded_toolbox(EVIDENCE).call("get_node_health")
    assert result.error and "node_health" in result.error
    assert "get_node_health" not in recorded_toolbox(EVIDENCE).available()


async def test_arguments_are_type_checked_and_unknown_tools_rejected() -> None:
    box = recorded_toolbox(EVIDENCE)
    with pytest.raises(InvalidRequestError, match="'tail' must be integer"):
        await box.call("get_pod_logs", {"tail": "ten"})
    with pytest.raises(InvalidRequestError, match="has no parameter 'colour'"):
        await box.call("list_pods", {"colour": "red"})
    with pytest.raises(InvalidRequestError, match="unknown tool 'delete_pod'"):
        await box.call("delete_pod")


async def test_a_slow_tool_times_out_and_a_long_output_is_cut_to_budget() -> None:
    async def slow(backend):
        await asyncio.sleep(30)

    async def big(backend):
        return {"text": "x" * 500}

    box = Toolbox(backend=None, tools=(Tool(ToolDeclaration("slow", "sleeps"), slow),
                                       Tool(ToolDeclaration("big", "talks"), big)),
                  limits=ToolLimits(timeout_s=0.05, output_chars=100))
    slow_result = await box.call("slow")
    assert slow_result.error == "timed out after 0.05s" and slow_result.data is None
    big_result = await box.call("big")
    assert big_result.truncated and big_result.text.startswith('{"text": "xxx') and "chars cut" in big_result.text
    assert big_result.data == {"text": "x" * 500}  # analyzers still see everything


def test_every_tool_declares_a_json_schema_a_model_can_read() -> None:
    names = [t.declaration.name for t in ALL_TOOLS]
    assert len(names) == len(set(names))
    spec = ToolDeclaration("t", "d", (Param("pod", str, "p", required=True), Param("n", int, "n"))).spec()
    assert isinstance(spec, ToolSpec)
    assert spec.parameters == {"type": "object", "required": ["pod"], "properties": {
        "pod": {"type": "string", "description": "p"}, "n": {"type": "integer", "description": "n"}}}


async def test_a_notification_is_only_ever_a_draft() -> None:
    result = await recorded_toolbox({}).call("draft_notification", {"channel": "#oncall", "text": "hi"})
    assert result.data["status"].startswith("draft: not sent")
