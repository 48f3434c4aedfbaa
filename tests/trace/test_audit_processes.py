import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from audit_factory import make_record, write_many, write_with_inherited

from cascadeflow.trace.jsonl import JsonlSink
from cascadeflow.trace.reader import log_files, read_log

pytestmark = pytest.mark.slow


def test_100k_records_from_8_spawned_processes_with_rotation_are_all_read_back(tmp_path):
    path = tmp_path / "audit.jsonl"
    workers, per_worker = 8, 12_500
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        written = pool.starmap(write_many, [(str(path), w, per_worker, 2_000_000, 100) for w in range(workers)])
    assert written == [per_worker] * workers
    contents = read_log(path)
    assert len(log_files(path)) > 2
    assert contents.skipped == []
    ids = [r["request_id"] for r in contents.records]
    assert len(ids) == workers * per_worker
    assert set(ids) == {f"w{w}-{i}" for w in range(workers) for i in range(per_worker)}
    assert len({r["pid"] for r in contents.records}) == workers  # really eight processes


def _kill_mid_write(path: Path, prefix: str, delay_s: float) -> list[str]:
    """Run a writer, SIGKILL it at an arbitrary point, return the ids it saw accepted."""
    worker = Path(__file__).with_name("audit_factory.py")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    # ~2 MB lines keep each write in flight long enough that some kills land inside one
    child = subprocess.Popen([sys.executable, str(worker), str(path), prefix, str(1_000_000)],
                             stdout=subprocess.PIPE, env=env, text=True)
    accepted = [child.stdout.readline().strip() for _ in range(3)]
    time.sleep(delay_s)  # varies where in the write loop the kill lands; nothing is asserted about time
    child.send_signal(signal.SIGKILL)
    rest, _ = child.communicate()
    assert child.returncode == -signal.SIGKILL
    return accepted + rest.split()


def test_processes_killed_mid_write_leave_a_readable_log_holding_every_accepted_record(tmp_path):
    path = tmp_path / "audit.jsonl"
    accepted: list[str] = []
    for round_, delay in enumerate((0.0, 0.07, 0.13)):
        accepted += _kill_mid_write(path, f"k{round_}", delay)
        contents = read_log(path)
        # at most one torn line per kill, each reported; only the newest can be the file's last line
        assert len(contents.skipped) <= round_ + 1
        assert all(s.reason in ("torn last line", "invalid JSON") for s in contents.skipped)
        assert all(s.reason == "invalid JSON" for s in contents.skipped[:-1])
    ids = [r["request_id"] for r in contents.records]
    assert set(accepted) <= set(ids)  # nothing acknowledged is lost
    assert len(ids) == len(set(ids))

    with JsonlSink(path, max_bytes=None) as sink:  # the next writer carries on after any torn line
        sink.write(make_record("after-kill"))
    after = read_log(path)
    assert [r["request_id"] for r in after.records] == ids + ["after-kill"]
    assert len(after.skipped) == len(contents.skipped)


@pytest.mark.parametrize("background", [False, True], ids=["sync", "background"])
def test_forked_children_writing_through_the_parents_sink_object_get_their_own_descriptors(tmp_path, background):
    # background: each child gets its own queue and writer thread, drained when multiprocessing exits it
    # with os._exit (no atexit)
    path = tmp_path / "audit.jsonl"
    sink = JsonlSink(path, max_bytes=50_000, backups=100, background=background)
    sink.write(make_record("parent-before"))
    sink.flush()  # in the file before the children start (background: not still in the parent's queue)
    ctx = multiprocessing.get_context("fork")  # the children inherit the object, open descriptors included
    children = [ctx.Process(target=write_with_inherited, args=(sink, w, 500)) for w in range(4)]
    for child in children:
        child.start()
    for child in children:
        child.join()
    assert [child.exitcode for child in children] == [0] * 4
    sink.write(make_record("parent-after"))
    sink.close()
    contents = read_log(path)
    ids = [r["request_id"] for r in contents.records]
    assert contents.skipped == []
    assert ids[0] == "parent-before" and ids[-1] == "parent-after"
    assert sorted(ids[1:-1]) == sorted(f"w{w}-{i}" for w in range(4) for i in range(500))


def test_sinks_can_be_handed_to_spawned_worker_processes(tmp_path):
    from cascadeflow.trace.sqlite import SqliteSink, read_sqlite

    jsonl_sink = JsonlSink(tmp_path / "audit.jsonl", max_bytes=50_000, backups=100)
    sqlite_sink = SqliteSink(tmp_path / "audit.db")
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        jobs = [(jsonl_sink, w, 300) for w in range(2)] + [(sqlite_sink, w, 300) for w in range(2, 4)]
        assert pool.starmap(write_with_inherited, jobs) == [300] * 4
    assert len(read_log(tmp_path / "audit.jsonl").records) == 600
    assert len(list(read_sqlite(tmp_path / "audit.db"))) == 600
