"""Loopback fakes of the OpenAI and Anthropic HTTP APIs, speaking their real wire formats, for tests.

One uvicorn server (127.0.0.1, ephemeral port) runs for the whole test session; `tests/conftest.py` exposes
two function-scoped fixtures, reset before every test:

    openai_server     Chat Completions  POST {base_url}/chat/completions  (plain, SSE with a usage chunk)
                      Responses API     POST {base_url}/responses         (plain, SSE event sequence)
                      base_url = "http://127.0.0.1:<port>/openai/v1"   (what OpenAI(base_url=...) expects)
    anthropic_server  Messages API      POST {base_url}/v1/messages       (plain, full SSE event sequence)
                      base_url = "http://127.0.0.1:<port>/anthropic"   (what Anthropic(base_url=...) expects)

Script the answers, in order; whether an answer is streamed follows the request's "stream": true:

    openai_server.enqueue(text="Paris", usage={"input": 12, "output": 1})
    openai_server.enqueue(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
    openai_server.enqueue(text="yes", logprobs=[("yes", -0.01, [("yes", -0.01), ("no", -4.6)])])
    openai_server.enqueue(status=429, headers={"retry-after": "2"})      # error in the wire's error shape
    openai_server.enqueue(status=400, error="too long", error_code="context_length_exceeded")
    openai_server.enqueue(body=b"{not json")                             # malformed body, status 200
    openai_server.enqueue(text="a b c d", cut_after=3)                   # stream dropped after 3 events
    openai_server.enqueue(text="slow", delay=5)                          # for timeouts and cancellation
    openai_server.enqueue(text="held", hold=event)   # answers once the test sets `event` (threading.Event)
    anthropic_server.enqueue(text="Hi", usage={"input": 5, "output": 2, "cache_read": 100})
    anthropic_server.enqueue(text="partial", stream_error="Overloaded")  # `event: error` mid-stream
    openai_server.default = Reply(text="ok")                             # answer when the queue is empty

With an empty queue and no default, the host answers 400 "no reply queued" (not retried by clients).
`usage` keys: input, output, cache_read, cache_write, reasoning; Anthropic's wire input_tokens excludes
the cache tokens, as the real API does.

Every request is recorded, in order: `openai_server.requests[i]` has `.method`, `.path` (e.g.
"/v1/chat/completions"), `.headers` (lower-cased), `.json` (parsed body), `.disconnected` (the client went
away before the answer was complete) and `.completed`. `.pending` counts queued replies not yet used.

For retry and breaker tests without wall-clock waits: `RecordedSleep` (pass as HttpOptions(sleep=...); its
`.waits` lists the requested waits) and `ManualClock` (pass to CircuitBreakers(clock=...); `.advance(s)`).
"""

from .doubles import ManualClock, RecordedSleep, wait_until
from .script import RecordedRequest, Reply, ScriptedHost
from .server import LoopbackServer

__all__ = ["LoopbackServer", "ManualClock", "RecordedRequest", "RecordedSleep", "Reply", "ScriptedHost", "wait_until"]
