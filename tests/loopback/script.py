"""What a scripted loopback host answers (`Reply`) and what it received (`RecordedRequest`)."""

from __future__ import annotations

import collections
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# A tool call to answer with: {"name": "get_weather", "arguments": {"city": "Paris"}, "id": "call_1"}
# ("arguments" may be a JSON string; "id" is generated when missing).
ToolCallSpec = Mapping[str, Any]
# A token logprob: (token, logprob) or (token, logprob, [(alternative, logprob), ...]).
LogprobSpec = tuple


@dataclass
class Reply:
    """One scripted answer. The host renders it in its wire format, streamed or not as the request asked.

    text / tool_calls / logprobs / usage / finish_reason / model: the answer. `usage` keys: input, output,
    cache_read, cache_write, reasoning (defaults: input = words in the request, output = streamed pieces).
    `finish_reason` is the wire's own value ("stop", "length", "end_turn", "refusal", ...).
    status + error (+ error_code, headers): an error response in the wire's error shape.
    body: a raw body sent as-is with `status` (e.g. b"{not json" for a malformed response).
    delay: seconds before the response starts; chunk_delay: seconds between stream events.
    hold: a threading.Event the response waits for before it starts (a test holds a call on the wire until
    it sets the event: no guess at how long the rest of the test takes).
    cut_after: for a stream, drop the connection after this many events (a stream cut mid-way).
    end_after: for a stream, end the body cleanly after this many events, before the final ones (a stream cut
    by a proxy or a host that closes it properly: the client sees an ordinary end of stream).
    stream_error: for a stream, an error event (Anthropic `event: error` / OpenAI error chunk) after the text.
    """

    text: str = "ok"
    tool_calls: Sequence[ToolCallSpec] = ()
    logprobs: Sequence[LogprobSpec] | None = None
    usage: Mapping[str, int] | None = None
    finish_reason: str | None = None
    model: str | None = None
    status: int = 200
    error: str | None = None
    error_code: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | str | None = None
    delay: float = 0.0
    hold: threading.Event | None = None
    chunk_delay: float = 0.0
    cut_after: int | None = None
    end_after: int | None = None
    stream_error: str | None = None

    def pieces(self) -> list[str]:
        """The text split into stream pieces: the logprob tokens when given, else words with their spaces."""
        if self.logprobs:
            return [lp[0] for lp in self.logprobs]
        words = self.text.split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words) if w or i == 0] if self.text else []

    def usage_counts(self, request_json: Any) -> dict[str, int]:
        given = dict(self.usage or {})
        words = sum(len(str(m.get("content", "")).split()) for m in _messages(request_json))
        return {
            "input": given.get("input", max(1, words)),
            "output": given.get("output", max(1, len(self.pieces()) + len(self.tool_calls))),
            "cache_read": given.get("cache_read", 0),
            "cache_write": given.get("cache_write", 0),
            "reasoning": given.get("reasoning", 0),
        }


def _messages(request_json: Any) -> list[Mapping[str, Any]]:
    if not isinstance(request_json, Mapping):
        return []
    raw = request_json.get("messages") or request_json.get("input") or []
    if isinstance(raw, str):
        return [{"content": raw}]
    return [m for m in raw if isinstance(m, Mapping)]


@dataclass
class RecordedRequest:
    """A request the host received: path below the host prefix, lower-cased headers, parsed JSON body."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    body: bytes
    disconnected: bool = False  # the client went away before the answer was complete
    completed: bool = False  # the whole answer was sent


class ScriptedHost:
    """One fake API host (OpenAI or Anthropic) on the shared loopback server: a reply queue and a request log."""

    def __init__(self, name: str, base_url: str):
        self.name = name
        self.base_url = base_url
        self.requests: list[RecordedRequest] = []
        self.default: Reply | None = None  # answer when the queue is empty (None: a 400 saying so)
        self._queue: collections.deque[Reply] = collections.deque()
        self._lock = threading.Lock()

    def enqueue(self, reply: Reply | None = None, **fields: Any) -> ScriptedHost:
        """Queue the next answer: enqueue(text="hi"), enqueue(status=429, headers={"retry-after": "2"}),
        enqueue(Reply(...)). Returns the host so calls chain."""
        with self._lock:
            self._queue.append(reply if reply is not None else Reply(**fields))
        return self

    def next_reply(self) -> Reply | None:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            return self.default

    @property
    def pending(self) -> int:
        """Replies queued but not yet used."""
        return len(self._queue)

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self.default = None
