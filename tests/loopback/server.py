"""The loopback server: one starlette app under uvicorn on 127.0.0.1 (ephemeral port) in a background thread,
serving the scripted OpenAI host under /openai and the scripted Anthropic host under /anthropic."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from . import anthropic_format, openai_format
from .script import RecordedRequest, Reply, ScriptedHost

Render = Callable[[Reply, Any], Any]


class _CutStream(Exception):
    """Raised inside a streaming body so uvicorn drops the connection mid-response."""


async def _wait(seconds: float, request: Request, record: RecordedRequest,
                hold: threading.Event | None = None) -> bool:
    """Sleep `seconds` (or until `hold` is set), watching for the client going away; False when it did."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while (loop.time() < end) if hold is None else not hold.is_set():
        if await request.is_disconnected():
            record.disconnected = True
            return False
        await asyncio.sleep(min(0.01, max(0.0, end - loop.time())) if hold is None else 0.005)
    return True


async def _events(reply: Reply, events: list[bytes], record: RecordedRequest) -> AsyncIterator[bytes]:
    try:
        for i, event in enumerate(events):
            if reply.cut_after is not None and i >= reply.cut_after:
                raise _CutStream
            if reply.end_after is not None and i >= reply.end_after:
                return
            if reply.chunk_delay and i:
                await asyncio.sleep(reply.chunk_delay)
            yield event
        record.completed = True
    finally:
        if not record.completed and reply.cut_after is None and reply.end_after is None:
            record.disconnected = True


def _endpoint(host: ScriptedHost, plain: Render, stream: Render, error_body: Callable[[Reply], Any]):
    async def handle(request: Request) -> Response:
        body = await request.body()
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        path = request.url.path.split("/", 2)[2] if request.url.path.count("/") >= 2 else request.url.path
        record = RecordedRequest(request.method, "/" + path, {k.lower(): v for k, v in request.headers.items()},
                                 parsed, body)
        host.requests.append(record)
        reply = host.next_reply()
        if reply is None:
            return JSONResponse(error_body(Reply(status=400, error=f"loopback {host.name}: no reply queued")), 400)
        if reply.delay and not await _wait(reply.delay, request, record):
            return Response(status_code=499)
        if reply.hold is not None and not await _wait(0.0, request, record, reply.hold):
            return Response(status_code=499)
        headers = {"x-request-id": "req_loopback", "request-id": "req_loopback", **reply.headers}
        if reply.body is not None:
            record.completed = True
            return Response(reply.body, reply.status, headers=headers, media_type="application/json")
        if reply.status >= 400:
            record.completed = True
            return JSONResponse(error_body(reply), reply.status, headers=headers)
        if isinstance(parsed, dict) and parsed.get("stream"):
            events = stream(reply, parsed)
            return StreamingResponse(_events(reply, events, record), reply.status, headers=headers,
                                     media_type="text/event-stream")
        record.completed = True
        return JSONResponse(plain(reply, parsed or {}), reply.status, headers=headers)

    return handle


def build_app(openai: ScriptedHost, anthropic: ScriptedHost) -> Starlette:
    chat = _endpoint(openai, openai_format.chat_completion, openai_format.chat_stream, openai_format.error_body)
    responses = _endpoint(openai, openai_format.response_object, openai_format.responses_stream,
                          openai_format.error_body)
    messages = _endpoint(anthropic, anthropic_format.message, anthropic_format.message_stream,
                         anthropic_format.error_body)
    return Starlette(routes=[
        Route("/openai/v1/chat/completions", chat, methods=["POST"]),
        Route("/openai/v1/responses", responses, methods=["POST"]),
        Route("/anthropic/v1/messages", messages, methods=["POST"]),
    ])


class LoopbackServer:
    """Runs the app in a daemon thread; `openai` and `anthropic` are its scripted hosts."""

    def __init__(self) -> None:
        # proto=IPPROTO_TCP makes asyncio set TCP_NODELAY on accepted connections (else Nagle + delayed ACK
        # add ~40 ms to every reused keep-alive request).
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        port = self._socket.getsockname()[1]
        self.root_url = f"http://127.0.0.1:{port}"
        self.openai = ScriptedHost("openai", f"{self.root_url}/openai/v1")
        self.anthropic = ScriptedHost("anthropic", f"{self.root_url}/anthropic")
        config = uvicorn.Config(build_app(self.openai, self.anthropic), log_config=None, log_level="critical",
                                access_log=False, lifespan="off", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name="loopback-server", daemon=True)

    def start(self) -> LoopbackServer:
        self._thread.start()
        for _ in range(500):
            if self._server.started:
                return self
            if not self._thread.is_alive():
                break
            threading.Event().wait(0.01)
        raise RuntimeError("the loopback server did not start")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
        self._socket.close()
