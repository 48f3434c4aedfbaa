"""A pooled connection the host closed while idle: the request is re-sent at once on a new connection, not
charged, not retried from the retry budget and not counted against the breaker."""

from __future__ import annotations

import asyncio
import json

from loopback import RecordedSleep

from cascadeflow.messages import build_request
from cascadeflow.providers.http import CircuitBreakers, HttpOptions
from cascadeflow.providers.openai_chat import OpenAIChat

ANSWER = json.dumps({"model": "m", "choices": [
    {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}).encode()


async def read_request(reader: asyncio.StreamReader) -> bool:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    await reader.readexactly(length)
    return True


async def start_host_that_drops_reused_connections():
    """Answers the first request of each connection and keeps it open; a second request on the same
    connection finds it closed (what a host's keep-alive timeout does to an idle connection)."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                     + str(len(ANSWER)).encode() + b"\r\nconnection: keep-alive\r\n\r\n" + ANSWER)
        await writer.drain()
        try:
            await read_request(reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def test_a_request_on_a_connection_the_host_closed_is_resent_on_a_new_one():
    server = await start_host_that_drops_reused_connections()
    port = server.sockets[0].getsockname()[1]
    sleep = RecordedSleep()
    breakers = CircuitBreakers()
    chat = OpenAIChat("vllm", base_url=f"http://127.0.0.1:{port}/v1",
                      http=HttpOptions(sleep=sleep, breakers=breakers))
    try:
        first = await chat.complete(build_request("hi", model="m"))
        second = await chat.complete(build_request("hi", model="m"))  # goes out on the pooled connection
    finally:
        server.close()
    assert first.content == second.content == "ok"
    assert [a.outcome for a in second.http_attempts] == ["not_sent", "answered"]
    assert second.http_attempts[0].error == "StaleConnection"
    assert sleep.waits == [] and breakers.get("vllm", "m").state == "closed"
