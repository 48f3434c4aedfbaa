"""Streams through the gateway: the byte streams of both wire formats compared event by event with what the
upstream sent (terminal chunk with finish_reason, tool-argument deltas, Anthropic usage events), a client
that disconnects mid-stream (upstream cancelled, charged what was generated), and errors before and after
a stream begins."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import openai


def sse_payloads(text: str) -> list[tuple[str | None, object]]:
    out = []
    for block in text.strip().split("\n\n"):
        kind, data = None, None
        for line in block.splitlines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
        out.append((kind, data if data == "[DONE]" else json.loads(data or "null")))
    return out


def stream(server, path, body):
    with httpx.stream("POST", server.url + path, json=body, timeout=10) as reply:
        return reply.status_code, reply.read().decode()


def test_chat_stream_replays_the_upstream_chunks(gateway, openai_server):
    openai_server.enqueue(text="one two three", tool_calls=[{"id": "call_9", "name": "f", "arguments": {"a": 1}}],
                          usage={"input": 7, "output": 5})
    body = {"model": "fast", "messages": [{"role": "user", "content": "go"}], "stream": True,
            "stream_options": {"include_usage": True}}
    status, text = stream(gateway, "/v1/chat/completions", body)
    ours = sse_payloads(text)
    openai_server.enqueue(text="one two three", tool_calls=[{"id": "call_9", "name": "f", "arguments": {"a": 1}}],
                          usage={"input": 7, "output": 5})
    with httpx.stream("POST", openai_server.base_url + "/chat/completions", json={**body, "model": "gpt-4o-mini"}) as r:
        theirs = sse_payloads(r.read().decode())
    assert status == 200

    def shape(events):
        return [(e["choices"][0]["delta"] if e["choices"] else {"usage": e["usage"]},
                 e["choices"][0]["finish_reason"] if e["choices"] else None) if isinstance(e, dict) else e
                for _, e in events]

    assert shape(ours) == shape(theirs)


def test_messages_stream_replays_the_upstream_events(gateway, anthropic_server):
    reply = {"text": "a b", "tool_calls": [{"id": "toolu_1", "name": "f", "arguments": {"q": "x"}}],
                 "usage": {"input": 9, "output": 4, "cache_read": 2}}
    body = {"model": "claude", "max_tokens": 50, "stream": True, "messages": [{"role": "user", "content": "go"}]}
    anthropic_server.enqueue(**reply)
    status, text = stream(gateway, "/v1/messages", body)
    anthropic_server.enqueue(**reply)
    with httpx.stream("POST", anthropic_server.base_url + "/v1/messages",
                      json={**body, "model": "claude-3-5-haiku-20241022"}) as r:
        theirs = [e for e in sse_payloads(r.read().decode()) if e[0] != "ping"]
    ours = sse_payloads(text)
    assert status == 200
    assert [k for k, _ in ours] == [k for k, _ in theirs]
    for (kind, mine), (_, upstream) in zip(ours, theirs, strict=True):
        if kind in ("content_block_start", "content_block_delta", "content_block_stop"):
            assert mine == upstream
    final_usage = ours[-2][1]["usage"]
    assert final_usage["output_tokens"] == 4 and final_usage["input_tokens"] == 9
    assert final_usage["cache_read_input_tokens"] == 2
    assert ours[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_a_client_gone_mid_stream_cancels_upstream_and_is_charged_what_was_generated(gateway, openai_server,
                                                                                      tmp_path):
    openai_server.enqueue(text=" ".join(["word"] * 200), chunk_delay=0.02)
    body = {"model": "fast", "max_tokens": 1000, "messages": [{"role": "user", "content": "talk"}], "stream": True}
    with httpx.stream("POST", gateway.url + "/v1/chat/completions", json=body, timeout=10) as reply:
        lines = reply.iter_lines()
        for _ in range(6):
            next(lines)
    audit = tmp_path / "gateway-audit.jsonl"
    for _ in range(300):
        if audit.exists() and audit.read_text().strip() and openai_server.requests[0].disconnected:
            break
        time.sleep(0.01)
    assert openai_server.requests[0].disconnected and not openai_server.requests[0].completed
    [record] = [json.loads(line) for line in audit.read_text().splitlines()]
    worst = (record["tiers"][0]["max_tokens"] * 2.0) / 1e6
    assert 0 < record["cost_usd"] < worst / 4  # the few words sent, not the 1000-token worst case
    assert 0 < record["output_tokens"] < 200


def test_an_error_before_the_stream_is_answered_with_its_status(gateway, openai_server):
    openai_server.enqueue(status=401, error="bad upstream key")  # the gateway's own key: not the client's fault
    status, text = stream(gateway, "/v1/chat/completions", {"model": "fast", "stream": True,
                                                            "messages": [{"role": "user", "content": "hi"}]})
    assert status == 502 and json.loads(text)["error"]["code"] == "upstream_auth"


def test_an_error_mid_stream_ends_the_stream_with_the_wire_error_event(gateway, anthropic_server):
    anthropic_server.enqueue(text="partial answer", stream_error="Overloaded")
    status, text = stream(gateway, "/v1/messages", {"model": "claude", "max_tokens": 20, "stream": True,
                                                     "messages": [{"role": "user", "content": "hi"}]})
    events = sse_payloads(text)
    assert status == 200 and events[-1][0] == "error"
    assert events[-1][1]["type"] == "error"


def test_bad_requests_are_400_before_anything_is_sent(gateway, openai_server):
    cases = [b"{not json", json.dumps({"model": "nope", "messages": [{"role": "user", "content": "x"}]}).encode(),
             json.dumps({"model": "fast", "messages": []}).encode(),
             json.dumps({"model": "fast", "messages": [{"role": "user", "content": "x"}], "n": 3}).encode(),
             json.dumps({"model": "fast", "messages": [{"role": "user", "content": "x"}], "bogus": 1}).encode()]
    for raw in cases:
        reply = httpx.post(gateway.url + "/v1/chat/completions", content=raw,
                           headers={"content-type": "application/json"})
        assert reply.status_code == 400, raw
        assert reply.json()["error"]["type"] == "invalid_request_error"
    assert openai_server.requests == []


def test_health_ready_and_metrics(gateway, openai_server):
    openai_server.enqueue(text="ok")
    httpx.post(gateway.url + "/v1/chat/completions", json={"model": "fast", "messages": [
        {"role": "user", "content": "hi"}]})
    assert httpx.get(gateway.url + "/health").json() == {"status": "ok"}
    assert httpx.get(gateway.url + "/ready").json()["checks"] == {"ledger": "ok"}
    metrics = httpx.get(gateway.url + "/metrics").text
    assert "cascadeflow" in metrics and 'model="gpt-4o-mini"' in metrics


def test_graceful_shutdown_lets_a_stream_in_flight_finish_and_settle(gateway_factory, openai_server, tmp_path):
    import threading

    server = gateway_factory()
    openai_server.enqueue(text=" ".join(["word"] * 30), chunk_delay=0.02, usage={"input": 3, "output": 30})
    body = {"model": "fast", "messages": [{"role": "user", "content": "talk"}], "stream": True}
    with httpx.stream("POST", server.url + "/v1/chat/completions", json=body, timeout=10) as reply:
        lines = reply.iter_lines()
        next(lines)
        stopping = threading.Thread(target=server.stop)
        stopping.start()  # SIGTERM's path: stop accepting, let the open response finish
        rest = [line for line in lines if line]
        stopping.join(timeout=10)
    assert rest[-1] == "data: [DONE]"
    [record] = [json.loads(line) for line in (tmp_path / "gateway-audit.jsonl").read_text().splitlines()]
    assert record["action"] == "allow" and record["output_tokens"] == 30


def test_a_stream_is_served_from_the_response_cache_with_usage(gateway_factory, openai_server):
    server = gateway_factory(cache={"ttl": 60})
    openai_server.default = None
    openai_server.enqueue(text="cached answer", usage={"input": 5, "output": 2})
    # a question of its own: memory caches of one configuration are shared within the process
    ask = {"model": "fast", "messages": [{"role": "user", "content": f"what is a cache? {uuid.uuid4()}"}]}
    assert httpx.post(server.url + "/v1/chat/completions", json=ask, timeout=10).status_code == 200
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0)
    chunks = list(client.chat.completions.create(**ask, stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "cached answer"
    assert chunks[-1].usage.completion_tokens == 2 and len(openai_server.requests) == 1
