"""A gateway on loopback (uvicorn on an ephemeral port in a thread) whose upstream is the loopback API double."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from cascadeflow.gateway.app import create_app


class GatewayServer:
    """`create_app(config)` served on 127.0.0.1:<ephemeral>; `.url` is its root, `.app` the ASGI app."""

    def __init__(self, config: dict[str, Any]):
        self.app = create_app(config)
        self.gateway = self.app.state.gateway
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self._server = uvicorn.Server(uvicorn.Config(self.app, log_config=None, log_level="critical",
                                                     access_log=False, lifespan="on", timeout_graceful_shutdown=5))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    def start(self) -> GatewayServer:
        self._thread.start()
        for _ in range(500):
            if self._server.started:
                return self
            threading.Event().wait(0.01)
        raise RuntimeError("the gateway did not start")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()


def upstream_models(openai_server: Any, anthropic_server: Any) -> dict[str, Any]:
    """Model names served by the gateway, their upstream the loopback hosts (declared prices: exact costs)."""
    oa = {"provider": "openai", "base_url": openai_server.base_url, "api_key": "sk-upstream-openai",
          "input_price_per_million": 1.0, "output_price_per_million": 2.0}
    an = {"provider": "anthropic", "base_url": anthropic_server.base_url, "api_key": "sk-upstream-anthropic",
          "input_price_per_million": 3.0, "output_price_per_million": 15.0}
    return {
        "fast": {"model": {"name": "gpt-4o-mini", **oa}},
        "quick": {"alias": "fast"},
        "claude": {"model": {"name": "claude-3-5-haiku-20241022", **an}},
        "oncall": {"router": {"severity": {"P0": [{"name": "claude-3-5-haiku-20241022", **an}]},
                              "default": {"name": "gpt-4o-mini", **oa}}},
        "auto": {"cascade": [{"name": "gpt-4o-mini", **oa}, {"name": "gpt-4o", **oa}],
                 "quality": {"threshold": 0.5}},
    }


@pytest.fixture
def gateway_factory(openai_server, anthropic_server, tmp_path) -> Iterator[Any]:
    started: list[GatewayServer] = []

    def start(**overrides: Any) -> GatewayServer:
        config = {"models": upstream_models(openai_server, anthropic_server),
                  "audit": str(tmp_path / "gateway-audit.jsonl"), **overrides}
        server = GatewayServer(config).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def gateway(gateway_factory) -> GatewayServer:
    return gateway_factory()
