"""The openai SDK's objects for an answer served from the response cache: a `ChatCompletion` (or a
`ParsedChatCompletion` for `parse()`) and its stream chunks, a Responses API `Response` and its stream events,
all validated by the SDK's own models."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from cascadeflow.cache.entry import CachedAnswer
from cascadeflow.harness.instrument.args import given


def pydantic_format(kwargs: Mapping[str, Any]) -> Any:
    """The pydantic model class a `parse()` call asks its answer to be parsed into, else None."""
    fmt = kwargs.get("response_format")
    return fmt if isinstance(fmt, type) and issubclass(fmt, BaseModel) else None


def cached_completion(answer: CachedAnswer, request_id: str) -> Any:
    from openai.types.chat import ChatCompletion

    calls = [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
             for c in answer.tool_calls]
    usage = answer.usage
    return ChatCompletion.model_validate({
        "id": f"chatcmpl-cache-{request_id}", "object": "chat.completion", "created": int(answer.created_at),
        "model": answer.model.split("/", 1)[-1],
        "choices": [{"index": 0, "finish_reason": answer.finish_reason, "logprobs": None, "message": {
            "role": "assistant", "content": answer.content if answer.content or not calls else None,
            "tool_calls": calls or None}}],
        "usage": {"prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens,
                  "total_tokens": usage.input_tokens + usage.output_tokens,
                  "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens},
                  "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens}},
    })


def cached_chunks(completion: Any, kwargs: Mapping[str, Any]) -> list[Any]:
    """The chunks of a stream that delivers `completion`: the text (and tool calls) in one delta, then the
    finish reason; the usage in the last chunk (a chunk of its own when the caller asked for
    `stream_options={"include_usage": True}`, as the API sends it; else on the finishing chunk)."""
    from openai.types.chat import ChatCompletionChunk

    message = completion.choices[0].message
    head = {"id": completion.id, "object": "chat.completion.chunk", "created": completion.created,
            "model": completion.model}
    delta: dict[str, Any] = {"role": "assistant", "content": message.content}
    if message.tool_calls:
        delta["tool_calls"] = [{"index": i, "id": c.id, "type": "function",
                                "function": {"name": c.function.name, "arguments": c.function.arguments}}
                               for i, c in enumerate(message.tool_calls)]
    usage = completion.usage.model_dump()
    options = kwargs.get("stream_options")
    separate = given(options) and isinstance(options, Mapping) and bool(options.get("include_usage"))
    chunks = [{**head, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
              {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": completion.choices[0].finish_reason}],
               **({} if separate else {"usage": usage})}]
    if separate:
        chunks.append({**head, "choices": [], "usage": usage})
    return [ChatCompletionChunk.model_validate(chunk) for chunk in chunks]


def cached_response(answer: CachedAnswer, request_id: str, kwargs: Mapping[str, Any]) -> Any:
    from openai.types.responses import Response as SdkResponse

    output: list[dict[str, Any]] = []
    if answer.content:
        output.append({"type": "message", "id": f"msg_cache_{request_id}", "role": "assistant",
                       "status": "completed",
                       "content": [{"type": "output_text", "text": answer.content, "annotations": []}]})
    output += [{"type": "function_call", "id": f"fc_cache_{i}_{request_id}", "call_id": c.id, "name": c.name,
                "arguments": c.arguments, "status": "completed"} for i, c in enumerate(answer.tool_calls)]
    usage = answer.usage
    data: dict[str, Any] = {
        "id": f"resp_cache_{request_id}", "object": "response", "created_at": answer.created_at,
        "model": answer.model.split("/", 1)[-1], "output": output,
        "status": "incomplete" if answer.finish_reason == "length" else "completed",
        "incomplete_details": {"reason": "max_output_tokens"} if answer.finish_reason == "length" else None,
        "parallel_tool_calls": kwargs.get("parallel_tool_calls") is not False, "store": False,
        "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
                  "total_tokens": usage.input_tokens + usage.output_tokens,
                  "input_tokens_details": {"cached_tokens": usage.cache_read_tokens,
                                           "cache_write_tokens": usage.cache_write_tokens},
                  "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens}},
    }
    echoed = {"tool_choice": kwargs["tool_choice"] if given(kwargs.get("tool_choice")) else "auto",
              "tools": kwargs["tools"] if given(kwargs.get("tools")) else []}
    try:  # the API echoes the request's tools; a tool shape this SDK version does not know is left out
        return SdkResponse.model_validate({**data, **echoed})
    except ValidationError:
        return SdkResponse.model_validate({**data, "tool_choice": "auto", "tools": []})


def cached_response_events(response: Any) -> list[Any]:
    """The Responses API stream that delivers `response`: created, each output item added (a message's text
    in one delta, a function call's arguments in one delta) and done, then completed with the usage."""
    from openai.types.responses import ResponseStreamEvent
    from pydantic import TypeAdapter

    final = response.model_dump(exclude_none=True)
    opening = {**final, "status": "in_progress", "output": [], "usage": None}
    events: list[dict[str, Any]] = [{"type": "response.created", "response": opening},
                                    {"type": "response.in_progress", "response": opening}]
    for index, item in enumerate(final["output"]):
        at = {"item_id": item["id"], "output_index": index}
        if item["type"] == "message":
            part = item["content"][0]
            text_at = {**at, "content_index": 0}
            events += [
                {"type": "response.output_item.added", "output_index": index,
                 "item": {**item, "status": "in_progress", "content": []}},
                {"type": "response.content_part.added", **text_at, "part": {**part, "text": ""}},
                {"type": "response.output_text.delta", **text_at, "delta": part["text"], "logprobs": []},
                {"type": "response.output_text.done", **text_at, "text": part["text"], "logprobs": []},
                {"type": "response.content_part.done", **text_at, "part": part}]
        else:
            events += [
                {"type": "response.output_item.added", "output_index": index,
                 "item": {**item, "status": "in_progress", "arguments": ""}},
                {"type": "response.function_call_arguments.delta", **at, "delta": item["arguments"]},
                {"type": "response.function_call_arguments.done", **at, "arguments": item["arguments"],
                 "name": item["name"]}]
        events.append({"type": "response.output_item.done", "output_index": index, "item": item})
    events.append({"type": "response.completed", "response": final})
    adapter: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
    return [adapter.validate_python({**event, "sequence_number": n}) for n, event in enumerate(events)]
