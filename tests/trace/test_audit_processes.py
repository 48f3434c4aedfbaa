import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from audit_factory import make_record, write_many

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
