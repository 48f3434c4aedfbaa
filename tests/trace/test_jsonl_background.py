"""JsonlSink(background=True): records are queued by the caller and written by a daemon thread, in order,
without loss, and drained by flush(), close(), cascadeflow.reset() and interpreter exit. The 100,000-record
thread test and the forked-children test run for both modes in test_jsonl_sink.py / test_audit_processes.py."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from audit_factory import make_record

from cascadeflow import harness
from cascadeflow.errors import ConfigurationError
from cascadeflow.trace import jsonl
from cascadeflow.trace.jsonl import JsonlSink
from cascadeflow.trace.reader import read_log


def _ids(path: Path) -> list[str]:
    contents = read_log(path)
    assert contents.skipped == []
    return [r["request_id"] for r in contents.records]


def test_records_are_written_in_the_order_they_were_queued_and_close_drains_them(tmp_path):
    path = tmp_path / "audit.jsonl"
    sink = JsonlSink(path, background=True)
    for i in range(2_000):
        sink.write(make_record(f"r{i}"))
    sink.write_line(json.dumps({"request_id": "raw"}))  # a raw line keeps its place in the queue
    sink.close()
    assert _ids(path) == [f"r{i}" for i in range(2_000)] + ["raw"]


def test_the_lines_are_the_same_bytes_a_synchronous_sink_writes(tmp_path):
    records = [make_record(f"r{i}", metadata={"n": i, "ü": [1.5, None]}) for i in range(50)]
    with JsonlSink(tmp_path / "sync.jsonl") as sync, JsonlSink(tmp_path / "bg.jsonl", background=True) as bg:
        for record in records:
            sync.write(record)
            bg.write(record)
    assert (tmp_path / "bg.jsonl").read_bytes() == (tmp_path / "sync.jsonl").read_bytes()


def test_flush_returns_once_every_queued_record_is_in_the_file(tmp_path):
    path = tmp_path / "audit.jsonl"
    sink = JsonlSink(path, background=True)
    for i in range(500):
        sink.write(make_record(f"r{i}"))
    sink.flush()
    assert len(_ids(path)) == 500  # read while the sink is still open
    sink.close()


def test_a_full_queue_blocks_the_caller_instead_of_dropping_records(tmp_path, monkeypatch):
    path = tmp_path / "audit.jsonl"
    release = threading.Event()
    sink = JsonlSink(path, background=True, queue_size=2)
    real_append = sink._append

    def held(data: bytes) -> None:
        release.wait()
        real_append(data)

    monkeypatch.setattr(sink, "_append", held)
    done = threading.Event()

    def writer() -> None:
        for i in range(10):
            sink.write(make_record(f"r{i}"))
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    assert not done.wait(0.3)  # one record in the writer's hands, two queued: the caller waits
    assert sink._queue is not None and sink._queue.qsize() == 2
    release.set()
    thread.join()
    sink.close()
    assert _ids(path) == [f"r{i}" for i in range(10)]


def test_a_write_after_close_is_written_synchronously(tmp_path):
    path = tmp_path / "audit.jsonl"
    sink = JsonlSink(path, background=True)
    sink.write(make_record("before"))
    sink.close()
    sink.write(make_record("after"))  # reopens, as a synchronous sink does
    sink.close()
    assert _ids(path) == ["before", "after"]


def test_harness_reset_drains_a_background_sink_given_to_init(tmp_path):
    path = tmp_path / "audit.jsonl"
    harness.init(mode="observe", audit=JsonlSink(path, background=True), instrument=False)
    sink = harness.default_runtime().sinks[0]
    for i in range(300):
        sink.write(make_record(f"r{i}"))
    harness.reset()
    assert _ids(path) == [f"r{i}" for i in range(300)]


def test_interpreter_exit_drains_what_is_still_queued(tmp_path):
    path = tmp_path / "audit.jsonl"
    script = (
        "import sys\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "from audit_factory import make_record\n"
        "from cascadeflow.trace.jsonl import JsonlSink\n"
        "sink = JsonlSink(sys.argv[1], background=True)\n"
        "for i in range(5000):\n"
        "    sink.write(make_record(f'r{i}'))\n"
        # no close(), no flush(): the exit hook must write the rest
    )
    subprocess.run([sys.executable, "-c", script, str(path), str(Path(__file__).parent)], check=True,
                   timeout=120)
    assert _ids(path) == [f"r{i}" for i in range(5000)]


def test_a_record_that_cannot_be_encoded_is_refused_to_its_caller_as_by_a_synchronous_sink(tmp_path):
    path = tmp_path / "audit.jsonl"
    sink = JsonlSink(path, background=True)
    loop: list = []
    loop.append(loop)
    sink.write(make_record("ok-1"))
    with pytest.raises(RecursionError):  # as a synchronous sink raises it; the runtime logs what a sink raises
        sink.write(make_record("bad", metadata={"x": loop}))
    sink.write(make_record("ok-2"))
    sink.close()
    assert _ids(path) == ["ok-1", "ok-2"]


def test_a_failed_append_in_the_writer_thread_is_logged_and_the_next_records_still_written(tmp_path, caplog,
                                                                                            monkeypatch):
    path = tmp_path / "audit.jsonl"
    sink = JsonlSink(path, background=True)
    real_append, failures = sink._append, [1]

    def append_failing_once(data: bytes) -> None:
        if failures:
            failures.pop()
            raise OSError("disk gone for a moment")
        real_append(data)

    monkeypatch.setattr(sink, "_append", append_failing_once)
    sink.write(make_record("lost-with-the-disk"))
    sink.drain()
    sink.write(make_record("ok"))
    sink.close()
    assert _ids(path) == ["ok"]
    assert "audit sink" in caplog.text and "disk gone" in caplog.text
    assert sink.lost == 1 and "1 lost by this sink" in caplog.text  # counted, not dropped silently


def test_the_queued_line_is_the_record_as_it_was_when_written(tmp_path):
    path = tmp_path / "audit.jsonl"
    sink = JsonlSink(path, background=True)
    metadata = {"alert_id": "INC-1", "tags": ["p1"]}
    sink.write(make_record("r0", metadata=metadata))
    metadata["tags"].append("changed after the call")
    sink.close()
    assert read_log(path).records[0]["tags"] == ["p1"]


def test_the_background_setting_survives_pickling(tmp_path):
    import pickle

    sink = JsonlSink(tmp_path / "audit.jsonl", background=True, queue_size=7)
    copy = pickle.loads(pickle.dumps(sink))
    assert (copy.background, copy.queue_size) == (True, 7)
    sink.close()


@pytest.mark.parametrize("size", [0, -1, True, 1.5])
def test_a_bad_queue_size_is_refused(tmp_path, size):
    with pytest.raises(ConfigurationError, match="queue_size"):
        JsonlSink(tmp_path / "audit.jsonl", background=True, queue_size=size)


def test_a_synchronous_sink_starts_no_thread(tmp_path):
    sink = JsonlSink(tmp_path / "audit.jsonl")
    assert sink._writer is None and sink not in set(jsonl._background_sinks)
    sink.close()
    assert os.path.exists(tmp_path / "audit.jsonl")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # killed on purpose
def test_if_the_writer_thread_dies_records_are_written_synchronously_instead_of_waiting_forever(tmp_path,
                                                                                                  monkeypatch):
    path = tmp_path / "audit.jsonl"
    sink = JsonlSink(path, background=True, queue_size=2)

    def crash(items):
        raise SystemExit("writer thread gone")  # ends the thread, as an unexpected error there would

    monkeypatch.setattr(sink, "_write_batch", crash)
    sink.write(make_record("r0"))  # taken by the writer, which dies with it (the only record lost)
    assert sink._writer is not None
    sink._writer.join(5)
    monkeypatch.undo()
    for i in range(1, 6):  # the queue fills (2), then the caller finds the writer gone: the queued records
        sink.write(make_record(f"r{i}"))  # are written in order, then this one and the rest synchronously
    sink.drain()  # returns: no writer to wait for
    sink.close()
    assert _ids(path) == ["r1", "r2", "r3", "r4", "r5"]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # killed on purpose
def test_records_queued_behind_a_dead_writer_are_written_at_close(tmp_path, monkeypatch):
    path = tmp_path / "audit.jsonl"
    sink = JsonlSink(path, background=True)
    monkeypatch.setattr(sink, "_write_batch", lambda items: (_ for _ in ()).throw(SystemExit("gone")))
    sink.write(make_record("r0"))
    assert sink._writer is not None
    sink._writer.join(5)
    monkeypatch.undo()
    sink.write(make_record("r1"))
    sink.write(make_record("r2"))
    sink.close()
    assert _ids(path) == ["r1", "r2"]
