"""Reading a response body the caller read through `with_streaming_response`: a JSON object, or the JSON
payloads of a server-sent-event stream (parsed by the providers' own SSE parser)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from cascadeflow.providers.sse import parse_sse


def json_object(body: bytes | str) -> dict[str, Any] | None:
    """The body as a JSON object; None when it is empty, cut short or not an object."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def sse_payloads(body: bytes) -> Iterator[dict[str, Any]]:
    """The JSON payloads of a server-sent-event body (`[DONE]` and events cut short skipped)."""
    for event in parse_sse(body.decode("utf-8", "replace")):
        if event.data != "[DONE]":
            payload = json_object(event.data)
            if payload is not None:
                yield payload
