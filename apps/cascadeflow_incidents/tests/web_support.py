"""What the web tests share: the app over a temporary data directory with scripted models (priced like
cloud models, so costs are real numbers), a real uvicorn server on a loopback ephemeral port, a TCP proxy
whose connections a test can cut, and headless Chromium (Debian's; a skip locally, a failure under CI when
it is missing)."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import pytest
from pydantic import SecretStr

from cascadeflow import BudgetConfig, CascadeFlow, ModelConfig, Runtime, open_ledger
from cascadeflow.testing import ScriptedProvider
from cascadeflow.trace import JsonlSink
from cascadeflow_incidents.llm import cloud_plan
from cascadeflow_incidents.memory import IncidentRecord, MemoryStore
from cascadeflow_incidents.memory.embedding import HashingEmbedder
from cascadeflow_incidents.runbooks import RunbookIndex
from cascadeflow_incidents.web.app import create_app
from cascadeflow_incidents.web.datadir import DataDir
from cascadeflow_incidents.web.services import WebServices, build_services
from cascadeflow_incidents.web.settings import IncidentWebSettings

from .samples import SCENARIOS

TOKEN = "test-token-" + "q7Zp3"  # a test's own secret; the tests check it never reaches a page or an event
CHEAP = ModelConfig(name="cheap", provider="openai", input_price_per_million=1, output_price_per_million=2)
STRONG = ModelConfig(name="strong", provider="openai", input_price_per_million=10, output_price_per_million=40)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]
# the crash-defect scenario's pod and cause: a cheap draft that names nothing, a strong answer that passes
WRONG = "ROOT_CAUSE: the network is slow\nCATEGORY: infrastructure"
GOOD = "ROOT_CAUSE: pod checkout-web-7c1e2-zzzzz crashes on a KeyError in its code\nCATEGORY: code_defect"
REMEMBERED = IncidentRecord(id="INC-remembered", title="checkout-web crash loop after a release",
                            symptoms="pods of checkout-web restart repeatedly, CrashLoopBackOff, KeyError in logs",
                            root_cause="a code defect shipped in the release", category="code_defect",
                            remediation="roll back the release", services=("checkout-web",), fix_worked=True)


def replies(request: Any) -> str:
    return WRONG if request.model == "cheap" else GOOD


def scripted_services(root: Path, *, reply: Callable[[Any], str] = replies, delay: float = 0.0,
                      daily_budget_usd: float | None = 1.0, **settings: Any) -> WebServices:
    """The app's services over `root`, with the scripted provider behind a cascade plan; the audit log and
    the ledger live in the data directory, as they do when the app builds them itself."""
    data = DataDir(root).mkdir()
    memory = MemoryStore(data.memory, embedder=HashingEmbedder())
    memory.add(REMEMBERED)
    provider = ScriptedProvider(default=reply, delay=delay)
    runtime = Runtime(resolve_provider=provider.resolver(), ledger=open_ledger(data.ledger_url),
                      sinks=[JsonlSink(data.audit)])
    plan = cloud_plan("cascade", CHEAP, STRONG)
    budget = BudgetConfig(daily_limit=daily_budget_usd) if daily_budget_usd else None
    cf = CascadeFlow(runtime=runtime, router=plan.router, budget_config=budget)
    config = IncidentWebSettings(data_dir=root, scenarios_dir=SCENARIOS, api_token=SecretStr(TOKEN),
                                 daily_budget_usd=daily_budget_usd, **settings)
    # the hashing embedder: model-free and quick to build, so each test's app starts at once
    return build_services(config, cf=cf, plan=plan, memory=memory, runbooks=RunbookIndex(embedder=HashingEmbedder()))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """The app under uvicorn on 127.0.0.1 and a free port, in a thread with its own event loop."""

    def __init__(self, services: WebServices):
        import uvicorn

        self.services = services
        self.app = create_app(services=services)
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Until no investigation runs any more."""
        deadline = time.monotonic() + timeout
        while any(not t.done() for t in list(self.services.runner.tasks.values())):
            if time.monotonic() > deadline:
                raise TimeoutError("investigations still running")
            time.sleep(0.05)


class CuttableProxy:
    """A TCP proxy on a loopback port in front of `target_port`; `cut()` drops every open connection (as a
    flaky network would), `requests` keeps the first bytes each connection sent."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = free_port()
        self.requests: list[bytes] = []
        self._writers: list[asyncio.StreamWriter] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self._ready.set()
        await self._stop.wait()
        server.close()
        self._close_all()
        await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers += [writer, up_writer]
        first = True

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, record: bool) -> None:
            nonlocal first
            try:
                while chunk := await src.read(65536):
                    if record and first:
                        self.requests.append(chunk)
                        first = False
                    elif record and chunk.startswith((b"GET ", b"POST ")):
                        self.requests.append(chunk)
                    dst.write(chunk)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))

    def _close_all(self) -> None:
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    def cut(self) -> None:
        self._loop.call_soon_threadsafe(self._close_all)

    def __enter__(self) -> Self:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def require_chromium() -> None:
    if shutil.which("chromium") is None or not os.path.exists(CHROMIUM):
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI is set: the browser tests are required")
        pytest.skip(message)
    if importlib.util.find_spec("playwright") is None:
        if os.environ.get("CI"):
            pytest.fail("playwright is not installed (the dev extra); CI is set: the browser tests are required")
        pytest.skip("playwright is not installed (the dev extra)")


@contextmanager
def chromium_page() -> Iterator[Any]:
    """A page in Debian's headless Chromium driven by Playwright (no browser is downloaded)."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


def sign_in(page: Any, base: str) -> None:
    page.goto(base + "/")
    page.fill("input[name=token]", TOKEN)
    page.click("header form button[type=submit]")
    page.wait_for_selector("text=signed in for write actions")
