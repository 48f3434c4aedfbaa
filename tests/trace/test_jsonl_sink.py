import json
import threading
import uuid

import pytest
from audit_factory import make_record, write_with
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cascadeflow.errors import ConfigurationError
from cascadeflow.trace import jsonl
from cascadeflow.trace.jsonl import JsonlSink, rotated_path
from cascadeflow.trace.reader import log_files, read_log
from cascadeflow.trace.redact import SECRET_KEY_PATTERN, redact_text


def test_each_record_is_one_json_line_with_the_documented_fields(tmp_path):
    path = tmp_path / "audit.jsonl"
    record = make_record()
    with JsonlSink(path) as sink:
        sink.write(record)
        sink.write(make_record("req-2"))
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    entry = json.loads(lines[0])
    assert entry == record.to_dict()
    for field in ("timestamp", "alert_id", "model_selected", "routing_reason", "input_tokens", "output_tokens",
                  "cost_usd", "latency_ms", "budget_remaining", "request_id", "run_id", "user_id", "action",
                  "mode", "tiers", "price_version"):
        assert field in entry
    assert entry["alert_id"] == "INC-042"


def test_prompts_and_answers_are_written_only_when_content_recording_is_enabled(tmp_path):
    record = make_record(prompt=[{"role": "user", "content": "disk at 61%"}], answer="clean /var/log")
    with JsonlSink(tmp_path / "plain.jsonl") as plain, JsonlSink(tmp_path / "content.jsonl",
                                                                 record_content=True) as content:
        plain.write(record)
        content.write(record)
    without = json.loads((tmp_path / "plain.jsonl").read_text())
    with_content = json.loads((tmp_path / "content.jsonl").read_text())
    assert "prompt" not in without and "answer" not in without
    assert with_content["prompt"] == [{"role": "user", "content": "disk at 61%"}]
    assert with_content["answer"] == "clean /var/log"


def test_rotation_keeps_every_record_in_order_across_numbered_files(tmp_path):
    path = tmp_path / "audit.jsonl"
    with JsonlSink(path, max_bytes=4000, backups=50) as sink:
        for i in range(100):
            sink.write(make_record(f"r{i}"))
    files = log_files(path)
    assert len(files) > 5
    assert files[-1] == path and files[0] == rotated_path(path, len(files) - 1)
    assert all(f.stat().st_size <= 4000 for f in files)
    contents = read_log(path)
    assert [r["request_id"] for r in contents.records] == [f"r{i}" for i in range(100)]
    assert contents.skipped == []


def test_rotation_drops_only_files_older_than_the_configured_backups(tmp_path):
    path = tmp_path / "audit.jsonl"
    with JsonlSink(path, max_bytes=2000, backups=2) as sink:
        for i in range(60):
            sink.write(make_record(f"r{i}"))
    assert [f.name for f in log_files(path)] == ["audit.jsonl.2", "audit.jsonl.1", "audit.jsonl"]
    ids = [r["request_id"] for r in read_log(path).records]
    assert ids == [f"r{i}" for i in range(60 - len(ids), 60)]  # the newest, contiguous


def test_a_writer_whose_file_was_rotated_by_another_writer_follows_to_the_live_file(tmp_path):
    path = tmp_path / "audit.jsonl"
    first = JsonlSink(path, max_bytes=3000, backups=20)
    second = JsonlSink(path, max_bytes=3000, backups=20)  # its own descriptors, like another process
    for i in range(40):
        (first if i % 3 else second).write(make_record(f"r{i}"))
    first.close()
    second.close()
    assert [r["request_id"] for r in read_log(path).records] == [f"r{i}" for i in range(40)]


def test_a_torn_line_left_by_a_killed_writer_never_swallows_the_next_record(tmp_path):
    path = tmp_path / "audit.jsonl"
    with JsonlSink(path) as sink:
        sink.write(make_record("before"))
    with open(path, "ab") as raw:  # what a writer killed in the middle of its write leaves behind
        raw.write(b'{"timestamp":"2026-06-15T03:42:11.000Z","request_id":"torn","cost')
    contents = read_log(path)
    assert [r["request_id"] for r in contents.records] == ["before"]
    assert [(s.line, s.reason) for s in contents.skipped] == [(2, "torn last line")]
    with JsonlSink(path) as sink:
        sink.write(make_record("after"))
    contents = read_log(path)
    assert [r["request_id"] for r in contents.records] == ["before", "after"]
    assert [(s.line, s.reason) for s in contents.skipped] == [(2, "invalid JSON")]


def test_fsync_policy_always_syncs_every_record_and_never_syncs_none(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(jsonl.os, "fsync", lambda fd: synced.append(fd))
    with JsonlSink(tmp_path / "always.jsonl", fsync="always") as sink:
        for i in range(5):
            sink.write(make_record(f"r{i}"))
        assert len(synced) == 5
    synced.clear()
    with JsonlSink(tmp_path / "never.jsonl", fsync="never") as sink:
        for i in range(5):
            sink.write(make_record(f"r{i}"))
    assert synced == []


def test_fsync_interval_syncs_at_most_once_per_interval(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(jsonl.os, "fsync", lambda fd: synced.append(fd))
    clock = iter([0.0, 0.1, 0.2, 5.0, 5.1, 10.5])  # construction, then one reading per record
    # time.monotonic is the process's: a background writer left running by another test reads the real one
    this_thread, real_monotonic = threading.get_ident(), jsonl.time.monotonic
    monkeypatch.setattr(jsonl.time, "monotonic",
                        lambda: next(clock) if threading.get_ident() == this_thread else real_monotonic())
    with JsonlSink(tmp_path / "interval.jsonl", fsync=5.0) as sink:
        for i in range(5):
            sink.write(make_record(f"r{i}"))
        assert len(synced) == 2  # at 5.0 and at 10.5
    assert len(synced) == 3  # and on close, so the last interval's records are not left unsynced


@pytest.mark.parametrize("kwargs, message", [
    ({"max_bytes": 1000, "backups": 0}, "backups must be at least 1"),
    ({"max_bytes": 0}, "max_bytes must be a positive"),
    ({"fsync": "sometimes"}, "fsync must be"),
    ({"fsync": -1}, "positive number of seconds"),
])
def test_bad_settings_are_refused_with_a_message_saying_what_to_pass(tmp_path, kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        JsonlSink(tmp_path / "audit.jsonl", **kwargs)


@pytest.mark.parametrize("options", [{}, {"background": True, "queue_size": 1_000}], ids=["sync", "background"])
def test_100k_records_from_8_threads_with_rotation_are_all_read_back(tmp_path, options):
    path = tmp_path / "audit.jsonl"
    workers, per_worker = 8, 12_500
    # one sink shared, as one Runtime shares it; in background mode rotation happens in the writer thread
    sink = JsonlSink(path, max_bytes=2_000_000, backups=100, **options)
    threads = [threading.Thread(target=write_with, args=(sink, w, per_worker)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sink.close()
    contents = read_log(path)
    assert len(log_files(path)) > 2  # rotation really happened
    assert contents.skipped == []
    ids = [r["request_id"] for r in contents.records]
    assert len(ids) == workers * per_worker
    assert set(ids) == {f"w{w}-{i}" for w in range(workers) for i in range(per_worker)}
    for w in range(workers):  # each worker's records appear in the order it wrote them
        mine = [int(i.split("-")[1]) for i in ids if i.startswith(f"w{w}-")]
        assert mine == sorted(mine)


def test_a_raw_line_with_a_line_break_is_refused_before_anything_is_written(tmp_path):
    path = tmp_path / "audit.jsonl"
    with JsonlSink(path) as sink, pytest.raises(ConfigurationError, match="line break"):
        sink.write_line('{"a": 1}\n{"b": 2}')
    assert path.read_bytes() == b""


def test_multi_line_text_inside_a_record_stays_on_one_line(tmp_path):
    path = tmp_path / "audit.jsonl"
    with JsonlSink(path, record_content=True) as sink:
        sink.write(make_record(answer="line one\nline two\r\n", metadata={"note": "a\nb"}))
    (line,) = path.read_text().splitlines()
    assert json.loads(line)["answer"] == "line one\nline two\r\n"


def test_a_pickled_sink_reopens_in_its_new_home_and_appends_to_the_same_log(tmp_path):
    import pickle

    path = tmp_path / "audit.jsonl"
    original = JsonlSink(path, max_bytes=5000, backups=7, fsync="always", record_content=True)
    original.write(make_record("first"))
    copy = pickle.loads(pickle.dumps(original))
    assert (copy.path, copy.max_bytes, copy.backups, copy.fsync, copy.record_content) == (
        path, 5000, 7, "always", True)
    copy.write(make_record("second"))
    original.close()
    copy.close()
    assert [r["request_id"] for r in read_log(path).records] == ["first", "second"]


def _keys(value):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from _keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _keys(inner)


metadata_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(metadata=st.dictionaries(st.text(min_size=1, max_size=12), metadata_values, max_size=4),
       answer=st.text(max_size=80))
def test_any_metadata_and_text_round_trip_as_exactly_one_line(tmp_path, metadata, answer):
    assume(redact_text(json.dumps([metadata, answer])) == json.dumps([metadata, answer]))
    assume(not any(SECRET_KEY_PATTERN.search(k) for k in _keys(metadata)))  # those are redacted by design
    path = tmp_path / f"{uuid.uuid4().hex}.jsonl"
    record = make_record(metadata=metadata, answer=answer)
    with JsonlSink(path, record_content=True) as sink:
        sink.write(record)
    assert path.read_bytes().count(b"\n") == 1
    (entry,) = read_log(path).records
    assert entry["metadata"] == metadata
    assert entry["answer"] == answer


def test_a_line_torn_by_another_writer_while_this_sink_stays_open_never_swallows_its_next_record(tmp_path):
    path = tmp_path / "audit.jsonl"
    with JsonlSink(path) as sink:
        sink.write(make_record("before"))
        with open(path, "ab") as raw:  # another process killed mid-write, between two of our writes
            raw.write(b'{"timestamp":"2026-06-15T03:42:11.000Z","request_id":"torn","cost')
        sink.write(make_record("after"))
    contents = read_log(path)
    assert [r["request_id"] for r in contents.records] == ["before", "after"]
    assert [(s.line, s.reason) for s in contents.skipped] == [(2, "invalid JSON")]


def test_a_sink_that_wrote_the_tail_itself_does_not_read_it_back(tmp_path, monkeypatch):
    reads = []
    real_byte_at = jsonl.byte_at
    monkeypatch.setattr(jsonl, "byte_at", lambda *a: reads.append(a) or real_byte_at(*a))
    path = tmp_path / "audit.jsonl"
    path.write_text('{"request_id":"earlier"}\n')
    with JsonlSink(path) as sink:
        for i in range(5):
            sink.write(make_record(f"r{i}"))
    assert len(reads) == 1  # only the first write checks a tail it did not write
    assert [r["request_id"] for r in read_log(path).records] == ["earlier"] + [f"r{i}" for i in range(5)]


def test_the_path_is_looked_up_once_per_interval_not_once_per_record(tmp_path, monkeypatch):
    path = tmp_path / "audit.jsonl"
    looked_up = []
    real_stat = jsonl.os.stat
    clock = [100.0]
    monkeypatch.setattr(jsonl.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(jsonl.os, "stat", lambda p, *a, **k: (p == path and looked_up.append(p)) or real_stat(p, *a, **k))
    with JsonlSink(path) as sink:
        for i in range(50):
            sink.write(make_record(f"r{i}"))
        assert len(looked_up) == 1  # the first write; the rest trust the shared inode until the interval passes
        clock[0] += jsonl.PATH_CHECK_INTERVAL_S
        sink.write(make_record("r50"))
        sink.write(make_record("r51"))
        assert len(looked_up) == 2
    assert [r["request_id"] for r in read_log(path).records] == [f"r{i}" for i in range(52)]


def test_a_log_renamed_by_another_tool_is_followed_and_nothing_written_meanwhile_is_lost(tmp_path, monkeypatch):
    path = tmp_path / "audit.jsonl"
    clock = [100.0]
    monkeypatch.setattr(jsonl.time, "monotonic", lambda: clock[0])
    with JsonlSink(path, max_bytes=None) as sink:
        sink.write(make_record("before"))
        path.rename(tmp_path / "audit.jsonl.old")  # logrotate's default (create) mode
        sink.write(make_record("within the interval"))  # lands in the renamed file, as a record, not lost
        clock[0] += jsonl.PATH_CHECK_INTERVAL_S
        sink.write(make_record("after"))
    assert [r["request_id"] for r in read_log(tmp_path / "audit.jsonl.old").records] == ["before", "within the interval"]
    assert [r["request_id"] for r in read_log(path).records] == ["after"]


def test_a_rotation_by_another_writer_is_seen_through_the_lock_file_without_a_path_lookup(tmp_path, monkeypatch):
    path = tmp_path / "audit.jsonl"
    first = JsonlSink(path, max_bytes=None)
    second = JsonlSink(path, max_bytes=2_000, backups=5)  # rotates; first never looks at the path by itself
    first.write(make_record("a0"))
    monkeypatch.setattr(jsonl, "PATH_CHECK_INTERVAL_S", 3600.0)
    first.write(make_record("a1"))  # sets its next path lookup an hour away
    for i in range(4):
        second.write(make_record(f"b{i}"))  # the third or fourth rotates the log
    assert jsonl.rotated_path(path, 1).exists()
    first.write(make_record("a2"))
    first.close()
    second.close()
    live = [r["request_id"] for r in read_log(path).records]
    assert live[-1] == "a2"  # in the live file, not in the rotated one the first writer still had open


def test_a_short_write_is_continued_until_the_whole_line_is_in_the_file(tmp_path, monkeypatch):
    real_write = jsonl.os.write
    monkeypatch.setattr(jsonl.os, "write", lambda fd, data: real_write(fd, bytes(data[:100])))
    path = tmp_path / "audit.jsonl"
    with JsonlSink(path) as sink:
        sink.write(make_record("r0"))
        sink.write(make_record("r1"))
    assert [r["request_id"] for r in read_log(path).records] == ["r0", "r1"]


def test_a_full_disk_is_logged_and_raised_to_the_caller(tmp_path, monkeypatch, caplog):
    import errno

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    with JsonlSink(tmp_path / "audit.jsonl") as sink:
        monkeypatch.setattr(jsonl.os, "write", full)
        with pytest.raises(OSError, match="No space"):
            sink.write(make_record("r0"))
    assert "disk is full" in caplog.text


def test_the_default_sink_needs_no_posix_only_os_function(tmp_path):
    """What Windows lacks (fork hooks, O_CLOEXEC, pread, fcntl in our own code) removed in a fresh process:
    cascadeflow imports, the default sinks open, and records from a cascade run are written and read back.
    The lock itself is portalocker's (flock on POSIX, LockFileEx on Windows)."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import os
        for name in ("fork", "register_at_fork", "O_CLOEXEC", "pread"):
            delattr(os, name)
        import cascadeflow
        from cascadeflow.trace import jsonl, open_sinks, iter_records
        assert "fcntl" not in vars(jsonl)
        from cascadeflow.testing import ScriptedProvider
        from cascadeflow.runtime.pipeline import Runtime
        sinks = open_sinks({str(tmp_path / "audit.jsonl")!r})
        agent = cascadeflow.CascadeAgent(
            models=[cascadeflow.ModelConfig(name="m", provider="openai", cost=0.001)],
            runtime=Runtime(resolve_provider=ScriptedProvider(["ok"] * 3).resolver(), sinks=sinks))
        for _ in range(3):
            agent.run_sync("is the disk full?")
        for sink in sinks:
            sink.close()
        print(len(list(iter_records({str(tmp_path / "audit.jsonl")!r}))))
    """)
    done = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "3"


FULL_DISK_CHILD = """
import errno, os, sys, json
from pathlib import Path
from audit_factory import make_record
from cascadeflow.trace.jsonl import JsonlSink

disk = Path(sys.argv[1])
sink = JsonlSink(disk / "audit.jsonl", max_bytes=None)
for i in range(3):
    sink.write(make_record(f"r{i}"))  # the log's last page is only partly used
with open(disk / "filler", "wb", buffering=0) as filler:  # fill every free block
    try:
        while True:
            filler.write(b"x" * 512)
    except OSError:
        pass
refused = 0
for i in range(3, 40):
    try:
        sink.write(make_record(f"r{i}"))
    except OSError as exc:
        refused += exc.errno == errno.ENOSPC
(disk / "filler").unlink()
sink.write(make_record("r99"))
print(refused, sum(1 for _ in open(disk / "audit.jsonl")), [json.loads(l)["request_id"] for l in open(disk / "audit.jsonl")][-1])
"""


def test_a_full_file_system_fails_writes_without_crashing_or_tearing_lines(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    disk = tmp_path / "tiny"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True, check=False).returncode:
        pytest.skip("mounting a small tmpfs needs root")
    here = Path(__file__).parent
    try:
        # in a child: a fault on the shared lock-file mapping would kill the process (SIGBUS), not raise
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(here), *sys.path])}
        child = subprocess.run([sys.executable, "-c", FULL_DISK_CHILD, str(disk)], capture_output=True, text=True,
                               timeout=120, env=env, check=False)
    finally:
        subprocess.run(["umount", str(disk)], check=False)
    assert child.returncode == 0, child.stderr[-2000:]
    refused, lines, last = child.stdout.split(maxsplit=2)
    # every write the full disk refused raised ENOSPC; every line in the log is a whole record
    assert int(refused) > 0 and int(lines) == 3 + (37 - int(refused)) + 1
    assert "r99" in last
