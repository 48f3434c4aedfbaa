"""Tool-args signal: every call names an offered tool and its arguments fit that tool's schema."""

from __future__ import annotations

from cascadeflow.cascade.validators import tool_args
from cascadeflow.messages import Response, ToolCall, build_request

TOOLS = [{"type": "function", "function": {"name": "page_oncall", "description": "page someone",
          "parameters": {"type": "object", "properties": {"team": {"type": "string"},
                                                          "urgency": {"enum": ["low", "high"]}},
                         "required": ["team"], "additionalProperties": False}}}]
REQ = build_request("Page the database team.", tools=TOOLS)


def calls(*items: tuple[str, str]) -> Response:
    return Response(content="", model="m", provider="p", finish_reason="tool_calls",
                    tool_calls=tuple(ToolCall(str(i), n, a) for i, (n, a) in enumerate(items)))


def test_no_signal_without_tool_calls():
    assert tool_args.check(REQ, Response("text", "m", "p")) is None


def test_valid_call_passes():
    sig = tool_args.check(REQ, calls(("page_oncall", '{"team": "db", "urgency": "high"}')))
    assert sig.score == 1.0 and not sig.veto


def test_arguments_that_are_not_json_veto():
    sig = tool_args.check(REQ, calls(("page_oncall", '{"team": "db"')))
    assert sig.veto and "not valid JSON" in sig.reason


def test_arguments_that_break_the_schema_veto():
    sig = tool_args.check(REQ, calls(("page_oncall", '{"urgency": "extreme"}')))
    assert sig.veto and "page_oncall" in sig.reason


def test_unknown_tool_name_vetoes_and_lists_offered_tools():
    sig = tool_args.check(REQ, calls(("delete_cluster", "{}")))
    assert sig.veto and "delete_cluster" in sig.reason and "page_oncall" in sig.reason


def test_one_bad_call_among_good_ones_vetoes():
    sig = tool_args.check(REQ, calls(("page_oncall", '{"team": "db"}'), ("page_oncall", '{"team": 7}')))
    assert sig.veto
