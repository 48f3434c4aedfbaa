"""DeferredQueue: durable, FIFO, at-least-once; an item leaves only after its handler succeeded."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from budget_support import FakeClock

from cascadeflow.budget import DeferredItem, DeferredQueue
from cascadeflow.errors import ConfigurationError


@pytest.fixture
def queue(tmp_path: Path, clock: FakeClock) -> DeferredQueue:
    q = DeferredQueue(tmp_path / "deferred.sqlite3", visibility_seconds=60, clock=clock)
    yield q
    q.close()


def test_enqueue_list_and_drain_in_order(queue: DeferredQueue) -> None:
    ids = [queue.enqueue({"alert": f"disk full on db-{i}", "severity": "high"}, reason="budget exhausted")
           for i in range(3)]
    assert len(set(ids)) == 3
    listed = queue.list()
    assert [item.id for item in listed] == ids
    assert listed[0].payload == {"alert": "disk full on db-0", "severity": "high"}
    assert listed[0].reason == "budget exhausted" and listed[0].attempts == 0
    seen: list[str] = []
    report = queue.drain(lambda item: seen.append(item.payload["alert"]))
    assert seen == ["disk full on db-0", "disk full on db-1", "disk full on db-2"]
    assert report.done == ids and report.failed == {}
    assert len(queue) == 0


def test_items_survive_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    first = DeferredQueue(path)
    item_id = first.enqueue({"n": 1}, "later")
    first.close()
    second = DeferredQueue(path)
    assert [i.id for i in second.list()] == [item_id]
    second.close()


def test_failing_handler_keeps_the_item_with_its_error(queue: DeferredQueue) -> None:
    ok = queue.enqueue({"n": 1})
    bad = queue.enqueue({"n": 2})
    last = queue.enqueue({"n": 3})

    def handler(item: DeferredItem) -> None:
        if item.payload["n"] == 2:
            raise RuntimeError("budget still exhausted")

    report = queue.drain(handler)
    assert report.done == [ok, last]
    assert report.failed == {bad: "RuntimeError: budget still exhausted"}
    (kept,) = queue.list()
    assert kept.id == bad and kept.attempts == 1 and kept.last_error == "RuntimeError: budget still exhausted"
    assert queue.drain(lambda item: None).done == [bad]  # same id, delivered again


def test_limit_caps_one_drain(queue: DeferredQueue) -> None:
    ids = [queue.enqueue({"n": i}) for i in range(5)]
    assert queue.drain(lambda item: None, limit=2).done == ids[:2]
    assert [i.id for i in queue.list()] == ids[2:]


def test_item_leased_by_a_crashed_drain_comes_back_after_its_visibility_timeout(
        tmp_path: Path) -> None:
    path = tmp_path / "crash.sqlite3"
    first = DeferredQueue(path)
    item_id = first.enqueue({"alert": "cpu"}, "deferred")
    first.close()
    script = textwrap.dedent(f"""
        import os
        from cascadeflow.budget import DeferredQueue
        q = DeferredQueue({str(path)!r}, visibility_seconds=30)
        q.drain(lambda item: os._exit(9))  # the worker dies inside the handler
    """)
    proc = subprocess.run([sys.executable, "-c", script], check=False, timeout=60)
    assert proc.returncode == 9
    clock = FakeClock(time.time())  # the worker leased with the real clock; ours moves forward
    queue = DeferredQueue(path, clock=clock)
    (item,) = queue.list()
    assert item.id == item_id and item.attempts == 1  # still queued, leased by the dead worker
    assert queue.drain(lambda i: None).done == []  # invisible while the lease lasts
    clock.advance(31)
    assert queue.drain(lambda i: None).done == [item_id]
    queue.close()


async def test_adrain_accepts_async_handlers(queue: DeferredQueue) -> None:
    ids = [queue.enqueue({"n": i}) for i in range(2)]
    handled: list[int] = []

    async def handler(item: DeferredItem) -> None:
        handled.append(item.payload["n"])

    report = await queue.adrain(handler)
    assert report.done == ids and handled == [0, 1]


@pytest.mark.parametrize(("payload", "message"), [
    (["not", "a", "dict"], "must be a dict"), ({"when": object()}, "JSON-serialisable"),
])
def test_bad_payload_is_refused(queue: DeferredQueue, payload: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        queue.enqueue(payload)  # type: ignore[arg-type]
    assert len(queue) == 0


def test_bad_queue_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="visibility_seconds"):
        DeferredQueue(tmp_path / "q.db", visibility_seconds=0)
    with pytest.raises(ConfigurationError, match="does not exist"):
        DeferredQueue(tmp_path / "missing" / "q.db")


@pytest.mark.slow
def test_concurrent_drains_in_four_processes_hand_out_each_item_once(tmp_path: Path) -> None:
    import multiprocessing

    from ledger_worker import drain_queue

    path = str(tmp_path / "shared.sqlite3")
    queue = DeferredQueue(path)
    ids = {queue.enqueue({"n": i}, "storm") for i in range(200)}
    queue.close()
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        handled = pool.map(drain_queue, [path] * 4)
    every = [item_id for part in handled for item_id in part]
    assert sorted(every) == sorted(ids)  # each item exactly once: no loss, no double hand-out
    assert len(DeferredQueue(path)) == 0
