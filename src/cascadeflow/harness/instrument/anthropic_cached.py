"""The anthropic SDK's objects for an answer served from the response cache: a `Message` and the raw stream
events that deliver it, validated by the SDK's own models."""

from __future__ import annotations

import json
from typing import Any

from cascadeflow.cache.entry import CachedAnswer

STOP_REASON = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}  # a stored answer's, back


def cached_message(answer: CachedAnswer, request_id: str) -> Any:
    from anthropic.types import Message as SdkMessage

    usage = answer.usage
    blocks: list[dict[str, Any]] = [{"type": "text", "text": answer.content}] if answer.content else []
    blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": json.loads(c.arguments or "{}")}
               for c in answer.tool_calls]
    return SdkMessage.model_validate({
        "id": f"msg_cache_{request_id}", "type": "message", "role": "assistant",
        "model": answer.model.split("/", 1)[-1], "content": blocks,
        "stop_reason": STOP_REASON.get(answer.finish_reason, "end_turn"), "stop_sequence": None,
        "usage": {"input_tokens": usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens,
                  "output_tokens": usage.output_tokens, "cache_read_input_tokens": usage.cache_read_tokens,
                  "cache_creation_input_tokens": usage.cache_write_tokens},
    })


def cached_events(message: Any) -> list[Any]:
    """The raw stream events that deliver `message`: message_start, each block (text in one delta, a tool
    call's input as one JSON delta), message_delta with the stop reason and the usage, message_stop."""
    from anthropic import types

    usage = message.usage.model_dump(exclude_none=True)
    start = message.model_dump(exclude_none=True)
    start.update(content=[], stop_reason=None, stop_sequence=None, usage={**usage, "output_tokens": 0})
    events: list[Any] = [types.RawMessageStartEvent.model_validate({"type": "message_start", "message": start})]
    for index, block in enumerate(message.content):
        if block.type == "text":
            opening: dict[str, Any] = {"type": "text", "text": ""}
            delta: dict[str, Any] = {"type": "text_delta", "text": block.text}
        else:
            opening = {"type": "tool_use", "id": block.id, "name": block.name, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block.input)}
        events += [
            types.RawContentBlockStartEvent.model_validate(
                {"type": "content_block_start", "index": index, "content_block": opening}),
            types.RawContentBlockDeltaEvent.model_validate({"type": "content_block_delta", "index": index,
                                                            "delta": delta}),
            types.RawContentBlockStopEvent.model_validate({"type": "content_block_stop", "index": index})]
    events += [
        types.RawMessageDeltaEvent.model_validate({"type": "message_delta", "usage": usage, "delta": {
            "stop_reason": message.stop_reason, "stop_sequence": None}}),
        types.RawMessageStopEvent.model_validate({"type": "message_stop"})]
    return events
