"""An OpenAI- and Anthropic-compatible API double in a process of its own, for the in-process benchmarks.

    with api_double() as root:   # "http://127.0.0.1:<port>"
        OpenAIChat("openai", base_url=f"{root}/v1", ...)          # POST /v1/chat/completions
        AnthropicMessages(base_url=root, ...)                     # POST /v1/messages

Every call is answered at once (uvicorn + httptools on loopback, TCP_NODELAY) with a canned body that
echoes the last user message ("answer to: <text>"), so a cache benchmark can tell answers apart. A process
of its own keeps the server's CPU out of the measuring process's (and off its GIL).
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

USAGE_OPENAI = {"prompt_tokens": 42, "completion_tokens": 11, "total_tokens": 53,
                "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}}
USAGE_ANTHROPIC = {"input_tokens": 42, "output_tokens": 11, "cache_creation_input_tokens": 0,
                   "cache_read_input_tokens": 0}
HEADERS = {"x-request-id": "req_1", "request-id": "req_1"}


def _asked(body: Any) -> str:
    content = body["messages"][-1]["content"]
    return content if isinstance(content, str) else json.dumps(content)


def chat_completion(body: Any) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": f"answer to: {_asked(body)}"}}],
            "usage": USAGE_OPENAI}


def message(body: Any) -> dict[str, Any]:
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": body["model"],
            "content": [{"type": "text", "text": f"answer to: {_asked(body)}"}], "stop_reason": "end_turn",
            "stop_sequence": None, "usage": USAGE_ANTHROPIC}


def serve() -> None:
    """Serve on an ephemeral loopback port; print the port, then serve until terminated."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    def route(path: str, render: Any) -> Route:
        async def answer(request: Request) -> Response:
            body = json.loads(await request.body())
            return Response(json.dumps(render(body)), media_type="application/json", headers=HEADERS)

        return Route(path, answer, methods=["POST"])

    app = Starlette(routes=[route("/v1/chat/completions", chat_completion), route("/v1/messages", message)])
    sock = socket.socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no delayed-ACK stalls on loopback
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)  # connections made before uvicorn runs wait in the backlog instead of being refused
    print(sock.getsockname()[1], flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, http="httptools")).run(sockets=[sock])


@contextlib.contextmanager
def api_double() -> Iterator[str]:
    """Start the double; yields its root URL and stops it on exit."""
    proc = subprocess.Popen([sys.executable, __file__], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield f"http://127.0.0.1:{proc.stdout.readline().strip()}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    serve()
