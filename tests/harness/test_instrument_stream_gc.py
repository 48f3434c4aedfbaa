"""A plain `create(stream=True)` stream that the caller drops unconsumed (one event read, or none) is settled
and audited exactly once when it is collected, with no error logged: openai and anthropic, sync and async,
dropped on its own or inside a reference cycle (then only `gc.collect()` frees it, and the pipeline
coroutine paused inside the stream's call is garbage in the same pass). Likewise a `with_streaming_response`
response entered, never exited nor read, and dropped in a cycle, and anthropic's `messages.stream()`
manager entered and never exited (one never entered sends, reserves and records nothing)."""

from __future__ import annotations

import gc
import logging
import sys
from typing import Any

import anthropic
import openai
import pytest

from cascadeflow import harness

MSGS = [{"role": "user", "content": "Weather in Oslo?"}]
USAGE = {"input": 12, "output": 5}
TEXT = "one two three four five"


class ListSink:
    def __init__(self) -> None:
        self.records: list[Any] = []

    def write(self, record: Any) -> None:
        self.records.append(record)


class Holder:
    """Keeps the stream in a reference cycle, as an SDK helper object or a caller's own object can."""

    def __init__(self, stream: Any):
        self.stream = stream
        self.me = self


def _openai(server: Any, aio: bool) -> Any:
    cls = openai.AsyncOpenAI if aio else openai.OpenAI
    return cls(base_url=server.base_url, api_key="sk-test", max_retries=0)


def _anthropic(server: Any, aio: bool) -> Any:
    cls = anthropic.AsyncAnthropic if aio else anthropic.Anthropic
    return cls(base_url=server.base_url, api_key="sk-ant-test", max_retries=0)


def _create(provider: str, client: Any) -> Any:
    if provider == "openai":
        return client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True)
    return client.messages.create(model="claude-3-5-haiku-20241022", max_tokens=50, messages=MSGS, stream=True)


def _sync_open(provider: str, server: Any, read: int, cycle: bool) -> None:
    client = _openai(server, False) if provider == "openai" else _anthropic(server, False)
    stream = _create(provider, client)
    for _ in range(read):
        next(stream)
    if cycle:
        Holder(stream)
    # every reference (stream, client, the iterator) dies with this frame


async def _async_open(provider: str, server: Any, read: int, cycle: bool) -> None:
    client = _openai(server, True) if provider == "openai" else _anthropic(server, True)
    stream = await _create(provider, client)
    for _ in range(read):
        await stream.__anext__()
    if cycle:
        Holder(stream)


@pytest.fixture
def quiet(monkeypatch, caplog):
    """The errors a finaliser can report: log records and unraisable exceptions (raised in __del__)."""
    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    caplog.set_level(logging.WARNING)
    yield unraisable
    gc.collect()


def _server(provider: str, openai_server: Any, anthropic_server: Any) -> Any:
    return openai_server if provider == "openai" else anthropic_server


def _enforced_with_sink(server: Any) -> ListSink:
    """Enforce mode auditing to a list, with one answer queued on `server`."""
    server.enqueue(text=TEXT, usage=USAGE)
    sink = ListSink()
    harness.init(mode="enforce", audit=[sink])
    return sink


def _check_settled_once(session: Any, sink: ListSink, caplog: Any, unraisable: list[Any]) -> None:
    gc.collect()
    gc.collect()
    ledger = harness.default_runtime().ledger.state(f"run:{session.run_id}")
    assert ledger.reserved == 0
    assert session.summary()["steps"] == 1 and session.summary()["cost_total"] > 0
    assert len(sink.records) == 1
    record = sink.records[0]
    assert record.action == "allow" and record.cost_usd > 0 and record.run_id == session.run_id
    # ours, or any about a coroutine (the loopback server's own asyncio may warn of the dropped connection)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING
            and (r.name.startswith("cascadeflow") or "coroutine" in r.getMessage())] == []
    assert [repr(u.exc_value) for u in unraisable] == []


CASES = [(p, read, cycle) for p in ("openai", "anthropic") for read in (0, 1) for cycle in (False, True)]


@pytest.mark.parametrize(("provider", "read", "cycle"), CASES)
def test_a_dropped_stream_is_settled_and_audited_once_at_gc(provider, read, cycle, openai_server,
                                                            anthropic_server, caplog, quiet):
    server = _server(provider, openai_server, anthropic_server)
    sink = _enforced_with_sink(server)
    with harness.run(budget=1.0) as session:
        _sync_open(provider, server, read, cycle)
        _check_settled_once(session, sink, caplog, quiet)


@pytest.mark.parametrize(("provider", "read", "cycle"), CASES)
async def test_a_dropped_async_stream_is_settled_and_audited_once_at_gc(provider, read, cycle, openai_server,
                                                                        anthropic_server, caplog, quiet):
    server = _server(provider, openai_server, anthropic_server)
    sink = _enforced_with_sink(server)
    async with harness.run(budget=1.0) as session:
        await _async_open(provider, server, read, cycle)
        _check_settled_once(session, sink, caplog, quiet)


def _sync_open_lazy(provider: str, server: Any, stream: bool) -> None:
    client = _openai(server, False) if provider == "openai" else _anthropic(server, False)
    resource = client.chat.completions if provider == "openai" else client.messages
    kwargs = ({"model": "gpt-4o-mini", "messages": MSGS} if provider == "openai"
              else {"model": "claude-3-5-haiku-20241022", "max_tokens": 50, "messages": MSGS})
    raw = resource.with_streaming_response.create(**kwargs, stream=stream).__enter__()  # never exited
    Holder(raw)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_streaming_response_dropped_unread_in_a_cycle_is_settled_once_at_gc(provider, stream, openai_server,
                                                                               anthropic_server, caplog, quiet):
    server = _server(provider, openai_server, anthropic_server)
    sink = _enforced_with_sink(server)
    with harness.run(budget=1.0) as session:
        _sync_open_lazy(provider, server, stream)
        _check_settled_once(session, sink, caplog, quiet)


# anthropic's `messages.stream(...)` manager: entered (`__enter__` / `await __aenter__()`) and never exited,
# its MessageStream read in part (0 or 1 events), or all its text read through `text_stream`, then dropped.
# It settles at gc like a dropped `create(stream=True)` stream that read as many events: from the usage the
# stream delivered, or the upper-bound estimate of what it delivered (not the worst case reserved).

ANTHROPIC_MODEL = "claude-3-5-haiku-20241022"
MANAGER_CASES = [(read, cycle) for read in (0, 1, "text") for cycle in (False, True)]


def _manager(client: Any) -> Any:
    return client.messages.stream(model=ANTHROPIC_MODEL, max_tokens=50, messages=MSGS)


def _sync_enter_manager(server: Any, read: Any, cycle: bool) -> None:
    manager = _manager(_anthropic(server, False))
    stream = manager.__enter__()
    if read == "text":
        assert "".join(stream.text_stream) == TEXT
    else:
        for _ in range(read):
            next(stream)
    if cycle:
        Holder(stream)
        Holder(manager)


async def _async_enter_manager(server: Any, read: Any, cycle: bool) -> None:
    manager = _manager(_anthropic(server, True))
    stream = await manager.__aenter__()
    if read == "text":
        assert "".join([t async for t in stream.text_stream]) == TEXT
    else:
        for _ in range(read):
            await stream.__anext__()
    if cycle:
        Holder(stream)
        Holder(manager)


def _reference(server: Any, sink: ListSink, read: Any) -> Any:
    """The record of a dropped `create(stream=True)` stream that read as many events (all for "text")."""
    server.enqueue(text=TEXT, usage=USAGE)
    with harness.run(budget=1.0) as session:
        stream = _create("anthropic", _anthropic(server, False))
        if read == "text":
            list(stream)
        else:
            for _ in range(read):
                next(stream)
        del stream
        gc.collect()
    (record,) = [r for r in sink.records if r.run_id == session.run_id]
    sink.records.remove(record)
    return record


def _check_like(record: Any, reference: Any, read: Any) -> None:
    assert (record.input_tokens, record.output_tokens) == (reference.input_tokens, reference.output_tokens)
    assert record.cost_usd == pytest.approx(reference.cost_usd)
    if read == "text":  # the whole stream was delivered: its own usage
        assert (record.input_tokens, record.output_tokens) == (USAGE["input"], USAGE["output"])


@pytest.mark.parametrize(("read", "cycle"), MANAGER_CASES)
def test_an_entered_unexited_stream_manager_is_settled_and_audited_once_at_gc(read, cycle, anthropic_server,
                                                                                caplog, quiet):
    sink = ListSink()
    harness.init(mode="enforce", audit=[sink])
    reference = _reference(anthropic_server, sink, read)
    anthropic_server.enqueue(text=TEXT, usage=USAGE)
    with harness.run(budget=1.0) as session:
        _sync_enter_manager(anthropic_server, read, cycle)
        _check_settled_once(session, sink, caplog, quiet)
        _check_like(sink.records[0], reference, read)


@pytest.mark.parametrize(("read", "cycle"), MANAGER_CASES)
async def test_an_entered_unexited_async_stream_manager_is_settled_and_audited_once_at_gc(
        read, cycle, anthropic_server, caplog, quiet):
    sink = ListSink()
    harness.init(mode="enforce", audit=[sink])
    reference = _reference(anthropic_server, sink, read)
    anthropic_server.enqueue(text=TEXT, usage=USAGE)
    async with harness.run(budget=1.0) as session:
        await _async_enter_manager(anthropic_server, read, cycle)
        _check_settled_once(session, sink, caplog, quiet)
        _check_like(sink.records[0], reference, read)


@pytest.mark.parametrize("aio", [False, True])
@pytest.mark.parametrize("cycle", [False, True])
def test_a_stream_manager_never_entered_sends_reserves_and_records_nothing(aio, cycle, anthropic_server,
                                                                          caplog, quiet):
    sink = _enforced_with_sink(anthropic_server)
    with harness.run(budget=1.0) as session:
        manager = _manager(_anthropic(anthropic_server, aio))
        if cycle:
            Holder(manager)
        del manager
        gc.collect()
        gc.collect()
        assert harness.default_runtime().ledger.state(f"run:{session.run_id}").reserved == 0
        assert session.summary()["steps"] == 0 and sink.records == []
    assert anthropic_server.requests == [] and anthropic_server.pending == 1
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert [repr(u.exc_value) for u in quiet] == []


@pytest.mark.parametrize("aio", [False, True])
def test_a_stream_manager_left_early_is_priced_like_a_stream_closed_early(aio, anthropic_server):
    """Exited after the first event (message_start, whose usage reports a placeholder output count): priced
    like a `create(stream=True)` stream closed there, from the estimate of what arrived."""
    sink = ListSink()
    harness.init(mode="enforce", audit=[sink])
    reference = _reference(anthropic_server, sink, 1)
    anthropic_server.enqueue(text=TEXT, usage=USAGE)
    with harness.run(budget=1.0):
        if aio:
            import asyncio

            async def left_early() -> None:
                async with _manager(_anthropic(anthropic_server, True)) as stream:
                    await stream.__anext__()
            asyncio.run(left_early())
        else:
            with _manager(_anthropic(anthropic_server, False)) as stream:
                next(stream)
    (record,) = sink.records
    _check_like(record, reference, 1)


def test_a_stream_whose_manager_is_dropped_is_settled_only_when_the_stream_is(anthropic_server, caplog, quiet):
    """`stream = client.messages.stream(...).__enter__()` drops the manager at once: the held stream is not
    settled by a collection while the caller still reads it, and settles (from its full usage) when dropped."""
    sink = _enforced_with_sink(anthropic_server)
    with harness.run(budget=1.0) as session:
        stream = _manager(_anthropic(anthropic_server, False)).__enter__()
        next(stream)
        gc.collect()
        assert sink.records == [] and harness.default_runtime().ledger.state(f"run:{session.run_id}").reserved > 0
        assert "".join(stream.text_stream) == TEXT
        del stream
        _check_settled_once(session, sink, caplog, quiet)
        assert (sink.records[0].input_tokens, sink.records[0].output_tokens) == (USAGE["input"], USAGE["output"])
