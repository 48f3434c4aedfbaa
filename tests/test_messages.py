"""Neutral messages and requests: validation with message indexes, structure kept end to end."""

from __future__ import annotations

import pytest

from cascadeflow.errors import InvalidRequestError
from cascadeflow.messages import (
    ImagePart,
    Message,
    Response,
    TextPart,
    ToolCall,
    ToolSpec,
    Usage,
    build_request,
    coerce_messages,
)

AGENT_TURNS = [
    {"role": "system", "content": "You are an on-call assistant."},
    {"role": "user", "content": [{"type": "text", "text": "db-1 disk at 91%."},
                                 {"type": "image_url", "image_url": {"url": "https://example.com/graph.png",
                                                                     "detail": "low"}}]},
    {"role": "assistant", "content": None,
     "tool_calls": [{"id": "call_1", "type": "function",
                     "function": {"name": "runbook_lookup", "arguments": '{"alert": "disk_full"}'}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "Rotate /var/log, then expand the volume."},
    {"role": "assistant", "content": "Rotate the logs first."},
    {"role": "user", "content": "Do it."},
]


def test_multi_turn_chat_with_tool_calls_and_parts_stays_structured() -> None:
    messages = coerce_messages(AGENT_TURNS)
    assert [m.role for m in messages] == ["system", "user", "assistant", "tool", "assistant", "user"]
    parts = messages[1].content
    assert isinstance(parts, tuple) and isinstance(parts[0], TextPart) and isinstance(parts[1], ImagePart)
    assert parts[1].detail == "low"
    assert messages[2].tool_calls == (ToolCall("call_1", "runbook_lookup", '{"alert": "disk_full"}'),)
    assert messages[2].tool_calls[0].parsed_arguments() == {"alert": "disk_full"}
    assert messages[3].tool_call_id == "call_1"
    assert messages[1].text == "db-1 disk at 91%."  # text view leaves images out


def test_openai_dict_round_trip_keeps_every_field() -> None:
    messages = coerce_messages(AGENT_TURNS)
    assert [m.to_dict() for m in messages] == AGENT_TURNS
    assert coerce_messages([m.to_dict() for m in messages]) == messages


def test_tool_call_arguments_given_as_objects_become_json_text() -> None:
    (message,) = coerce_messages([{"role": "assistant", "tool_calls": [
        {"id": "c", "function": {"name": "f", "arguments": {"x": 1}}}]}])
    assert message.tool_calls[0].arguments == '{"x": 1}'


def test_anthropic_image_blocks_become_data_urls() -> None:
    (message,) = coerce_messages([{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}]}])
    assert message.content == (ImagePart("data:image/png;base64,AAAA", "image/png"),)


@pytest.mark.parametrize(("messages", "index", "what"), [
    ([{"role": "user", "content": "ok"}, {"role": "robot", "content": "hi"}], 1, "role"),
    ([{"role": "user", "content": "ok"}, "just text"], 1, "expected a dict"),
    ([{"content": "no role"}], 0, "role"),
    ([{"role": "user", "content": [{"type": "audio", "data": "x"}]}], 0, "unsupported content part"),
    ([{"role": "user", "content": [{"type": "text", "text": 5}]}], 0, "text"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}], 0, "image_url.url"),
    ([{"role": "user", "content": "a"}, {"role": "user", "content": "b"},
      {"role": "assistant", "tool_calls": [{"id": "c", "function": {}}]}], 2, "function name"),
])
def test_malformed_messages_are_rejected_with_their_index(messages: list, index: int, what: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        build_request(messages)
    assert f"message {index}" in str(caught.value) and what in str(caught.value)


@pytest.mark.parametrize("bad", ["", "   ", [], None, b"bytes", 42])
def test_empty_or_wrong_typed_messages_are_rejected(bad: object) -> None:
    with pytest.raises(InvalidRequestError):
        build_request(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("max_tokens", [0, -5, 2.5, True, "100"])
def test_max_tokens_must_be_a_positive_integer(max_tokens: object) -> None:
    with pytest.raises(InvalidRequestError, match="max_tokens"):
        build_request("hi", max_tokens=max_tokens)  # type: ignore[arg-type]


@pytest.mark.parametrize(("option", "value"), [("temperature", -0.1), ("temperature", 2.5),
                                               ("top_logprobs", 21), ("timeout", 0)])
def test_out_of_range_options_are_rejected(option: str, value: float) -> None:
    with pytest.raises(InvalidRequestError, match=option):
        build_request("hi", **{option: value})


def test_a_query_string_becomes_one_user_message() -> None:
    request = build_request("What broke?", max_tokens=10, stop="END", top_k=7)
    assert request.messages == (Message.user("What broke?"),)
    assert request.stop == ("END",) and request.extra == {"top_k": 7}


def test_tools_in_openai_and_anthropic_shapes_become_tool_specs() -> None:
    schema = {"type": "object", "properties": {"host": {"type": "string"}}}
    request = build_request("check", tools=[
        {"type": "function", "function": {"name": "ping", "description": "ping a host", "parameters": schema}},
        {"name": "dig", "input_schema": schema},
        ToolSpec(name="noop"),
    ])
    assert [t.name for t in request.tools] == ["ping", "dig", "noop"]
    assert request.tools[1].parameters == schema
    with pytest.raises(InvalidRequestError, match="name"):
        build_request("check", tools=[{"description": "nameless"}])
    with pytest.raises(InvalidRequestError, match="parameters"):
        build_request("check", tools=[{"name": "x", "parameters": "not a schema"}])


def test_usage_adds_up_and_counts_totals() -> None:
    total = Usage(10, 5, cache_read_tokens=2) + Usage(1, 1, estimated=True)
    assert (total.input_tokens, total.output_tokens, total.cache_read_tokens, total.total_tokens) == (11, 6, 2, 17)
    assert total.estimated


def test_response_becomes_the_next_assistant_message() -> None:
    call = ToolCall("c1", "ping", "{}")
    response = Response(content="", model="m", provider="p", tool_calls=(call,), finish_reason="tool_calls")
    assert response.message() == Message("assistant", None, (call,))
    assert Response(content="hi", model="m", provider="p").message() == Message("assistant", "hi")


def test_build_request_refuses_an_unknown_option_and_lists_the_accepted_ones():
    from cascadeflow.messages import WIRE_OPTIONS, build_request

    with pytest.raises(InvalidRequestError) as caught:
        build_request("hi", temprature=0.2, max_tokns=5)
    message = str(caught.value)
    assert message.startswith("unknown options max_tokns, temprature; accepted: ")
    assert all(name in message for name in (*WIRE_OPTIONS, "temperature", "extra_body"))


def test_wire_options_and_extra_body_reach_the_request_body_fields():
    from cascadeflow.messages import build_request

    request = build_request("hi", seed=7, top_k=40, extra_body={"safe_prompt": True})
    assert request.extra == {"seed": 7, "top_k": 40, "safe_prompt": True}
