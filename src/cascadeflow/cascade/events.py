"""Cascade events and their fan-out: callbacks (`on_event`), async iterators (`events()`), verbose lines."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

log = logging.getLogger(__name__)

MODEL_SELECTED = "model_selected"
DRAFT_ACCEPTED = "draft_accepted"
DRAFT_REJECTED = "draft_rejected"
ESCALATED = "escalated"
ERROR = "error"
COMPLETED = "completed"
# streaming only
TEXT = "text"  # answer text that will not be replaced
DRAFT_TEXT = "draft_text"  # show_draft=True: text of an answer that is still being validated
DRAFT_PENDING = "draft_pending"  # show_draft=True: "draft may be replaced", before the first draft_text
REPLACED = "replaced"  # show_draft=True: the draft text shown so far is withdrawn

KINDS = (MODEL_SELECTED, DRAFT_ACCEPTED, DRAFT_REJECTED, ESCALATED, ERROR, COMPLETED, TEXT, DRAFT_TEXT,
         DRAFT_PENDING, REPLACED)


@dataclass(frozen=True, slots=True, kw_only=True)
class CascadeEvent:
    """One thing that happened in a cascade run. `data` carries kind-specific fields (tokens, cost, text...)."""

    kind: str
    request_id: str
    reason: str = ""
    model: str | None = None
    tier: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    timestamp: float = field(default_factory=time.time)

    @property
    def text(self) -> str:
        return str(self.data.get("text", ""))


Listener = Callable[[CascadeEvent], None]
_CLOSED = object()


class EventBus:
    """Delivers every event to callbacks (synchronously) and to async-iterator subscribers (thread-safe)."""

    def __init__(self) -> None:
        self._callbacks: list[Listener] = []
        self._queues: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[Any]]] = []
        self._lock = threading.Lock()

    def on_event(self, fn: Listener) -> Callable[[], None]:
        """Call `fn(event)` for every event; returns a function that unsubscribes it."""
        with self._lock:
            self._callbacks.append(fn)

        def unsubscribe() -> None:
            with self._lock:
                if fn in self._callbacks:
                    self._callbacks.remove(fn)

        return unsubscribe

    @property
    def active(self) -> bool:
        return bool(self._callbacks or self._queues)

    def emit(self, event: CascadeEvent) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
            queues = list(self._queues)
        for fn in callbacks:
            try:
                fn(event)
            except Exception:  # a broken listener must never break a call
                log.exception("cascade event listener failed on %s", event.kind)
        for loop, queue in queues:
            _deliver(loop, queue, event)

    async def events(self) -> AsyncIterator[CascadeEvent]:
        """Every event emitted from now on, until the iterator is closed (break out of the loop)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        entry = (loop, queue)
        with self._lock:
            self._queues.append(entry)
        try:
            while True:
                item = await queue.get()
                if item is _CLOSED:
                    return
                yield item
        finally:
            with self._lock:
                if entry in self._queues:
                    self._queues.remove(entry)

    def close(self) -> None:
        """End every open `events()` iterator."""
        with self._lock:
            queues = list(self._queues)
        for loop, queue in queues:
            _deliver(loop, queue, _CLOSED)


def _deliver(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any], item: Any) -> None:
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        queue.put_nowait(item)
    elif not loop.is_closed():
        loop.call_soon_threadsafe(queue.put_nowait, item)


def _money(value: Any) -> str:
    return f"${float(value):.6f}"


def format_event(event: CascadeEvent) -> str | None:
    """One line per decision, e.g. `[CASCADEFLOW] draft accepted → llama-3.1-8b-instant | Tokens: 398 |
    Cost: $0.000038 | Latency: 0.33s`; None for events that are not decisions (stream text)."""
    d = event.data
    name = d.get("model_name") or event.model or "?"
    stats = (f" | Tokens: {d.get('tokens', 0)} | Cost: {_money(d.get('cost', 0))} | "
             f"Latency: {float(d.get('latency_ms', 0.0)) / 1000:.2f}s")
    kind = event.kind
    if kind == MODEL_SELECTED:
        return f"[CASCADEFLOW] {event.reason} → {d.get('target', name)}"
    if kind == DRAFT_ACCEPTED:
        return f"[CASCADEFLOW] draft accepted → {name}{stats}"
    if kind == DRAFT_REJECTED:
        return f"[CASCADEFLOW] draft rejected ({event.reason}) ← {name}{stats}"
    if kind == ESCALATED:
        return f"[CASCADEFLOW] escalated → {name} ({event.reason})"
    if kind == ERROR:
        return f"[CASCADEFLOW] error ← {name}: {event.reason}"
    if kind == COMPLETED:
        # Tokens/Cost/Latency here are the whole run's (every tier), not only the answering tier's
        return f"[CASCADEFLOW] completed → {name}{stats} | Saved: {float(d.get('savings_pct', 0.0)):.1%}"
    return None


class VerbosePrinter:
    """The listener behind `verbose=True`: one printed line per decision. The only printing in the engine."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream

    def __call__(self, event: CascadeEvent) -> None:
        line = format_event(event)
        if line is not None:
            print(line, file=self.stream or sys.stdout, flush=True)
