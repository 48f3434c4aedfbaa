"""The default audit sink: one JSON line per record in a size-rotated file shared by threads and processes.

Every record is written with a single `os.write` on an O_APPEND descriptor while holding an exclusive lock
(portalocker: `flock` on POSIX, `LockFileEx` on Windows) on a sibling lock file (`<log>.lock`, never
rotated, so every process locks the same file).
Under that lock each writer re-checks that its descriptor still points at the live file (another process
may have rotated it), rotates when the next line would pass `max_bytes`, and starts a fresh line if a killed
writer left a torn one, so a torn fragment can never swallow a later record.

The lock file also holds, in its first 16 bytes (memory-mapped by every writer), the inode of the live log
as the last writer to open or rotate it left it: a writer sees another one's rotation there without looking
the path up on every record. The path itself is looked up at least once a second, so a log renamed or
removed by something else (logrotate, a person) is followed within a second; records written in that second
land in the renamed file.

With `background=True` the caller encodes the line and enqueues it; a daemon thread appends it the same
way. The queue is bounded (a full queue blocks the caller, nothing is dropped) and `flush()`, `close()`,
`cascadeflow.reset()` and interpreter exit drain it, but a process killed with SIGKILL (or a hard crash)
loses what was still queued, which is why writes are synchronous by default.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import logging
import mmap
import os
import queue
import threading
import time
import weakref
from pathlib import Path
from typing import Self

import portalocker

from cascadeflow.errors import ConfigurationError
from cascadeflow.trace.fileio import byte_at, write_rest, write_rest_at
from cascadeflow.trace.records import AuditRecord
from cascadeflow.trace.redact import record_line

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_BACKUPS = 10
FSYNC_POLICIES = ("never", "always")
DEFAULT_QUEUE_SIZE = 10_000  # records a background sink holds before write() blocks
MAX_BATCH = 1_000  # records the background writer takes off the queue at once
BATCH_BYTES = 1024 * 1024  # at most this much in one background append
BATCH_PAUSE_S = 0.5  # the background writer's pause once the queue is empty
_STOP = object()  # tells a background writer thread to exit
SHARED_BYTES = 16  # the live log's (st_ino, st_dev) at the start of the lock file, shared by every writer
PATH_CHECK_INTERVAL_S = 1.0  # the log's path is looked up at least this often (renames by other tools)
_process = [0]  # bumped in every forked child: a sink carrying an older value was opened by the parent


def _forked() -> None:
    _process[0] += 1


if hasattr(os, "register_at_fork"):  # POSIX; a platform without fork has no child to tell apart
    os.register_at_fork(after_in_child=_forked)  # cheaper than os.getpid() (a system call) on every record
# Not inherited by child programs; binary on Windows, where os.open would otherwise translate newlines.
OPEN_FLAGS = getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_background_sinks: weakref.WeakSet[JsonlSink] = weakref.WeakSet()  # drained at interpreter exit


def rotated_path(path: Path, index: int) -> Path:
    """`audit.jsonl` -> `audit.jsonl.1` (newest backup) ... `audit.jsonl.N` (oldest)."""
    return path.with_name(f"{path.name}.{index}")


def _check_fsync(fsync: str | float) -> str | float:
    if isinstance(fsync, str):
        if fsync not in FSYNC_POLICIES:
            raise ConfigurationError(f"fsync must be 'never', 'always' or a number of seconds, got {fsync!r}")
        return fsync
    if isinstance(fsync, bool) or not isinstance(fsync, (int, float)) or fsync <= 0:
        raise ConfigurationError(f"fsync interval must be a positive number of seconds, got {fsync!r}")
    return float(fsync)


class JsonlSink:
    """Append audit records to `path` as JSON lines; rotate to `path.1..path.<backups>` past `max_bytes`.

    fsync: "never" (the OS flushes; records survive a process crash, not a power cut), "always" (fsync
    after every record), or a number of seconds (fsync when at least that long has passed since the last).
    max_bytes=None disables rotation. Prompts and answers are written only with record_content=True.
    background=True: write() encodes the line and enqueues it (at most `queue_size` records) and a daemon
    thread appends; see the module docstring for what that gives up.
    """

    def __init__(self, path: str | os.PathLike[str], *, max_bytes: int | None = DEFAULT_MAX_BYTES,
                 backups: int = DEFAULT_BACKUPS, fsync: str | float = "never", record_content: bool = False,
                 background: bool = False, queue_size: int = DEFAULT_QUEUE_SIZE):
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise ConfigurationError(f"queue_size must be a positive number of records, got {queue_size!r}")
        if max_bytes is not None and (isinstance(max_bytes, bool) or max_bytes <= 0):
            raise ConfigurationError(f"max_bytes must be a positive number of bytes or None, got {max_bytes!r}")
        if max_bytes is not None and backups < 1:
            # rotating without a backup would delete accepted records
            raise ConfigurationError("backups must be at least 1 when max_bytes is set (or pass max_bytes=None)")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self.fsync = _check_fsync(fsync)
        self.record_content = record_content
        self.background = background
        self.queue_size = queue_size
        self.lost = 0  # queued records the background writer could not write (synchronous writes raise)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._pid = -1
        self._fd = -1
        self._lock_fd = -1
        self._inode = (-1, -1)  # (st_ino, st_dev) of the file self._fd has open
        self._end = -1  # the file's size right after our last write to it
        self._shared: memoryview | None = None  # the lock file's first bytes as (st_ino, st_dev) of the live log
        self._next_path_check = 0.0  # monotonic time of the next lookup of the path itself
        self._thread_lock = threading.Lock()
        self._last_sync = time.monotonic()
        self._queue: queue.SimpleQueue[object] | None = None  # background mode, in the process that started it
        self._writer: threading.Thread | None = None
        self._enqueue_lock = threading.Lock()
        try:
            self._ensure_process()
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            # a full disk is a sink failure, not a configuration error: the first write opens the files again
            # and fails (or succeeds, once there is room) under the audit-failure policy
            log.warning("audit log %s: the disk is full (%s); records are refused until there is room", path, exc)

    def __repr__(self) -> str:
        return f"JsonlSink({str(self.path)!r})"

    @property
    def is_open(self) -> bool:
        """Whether this process holds the log open (False after close(), and in a forked child until its
        first write reopens it)."""
        return self._pid == _process[0]

    def __getstate__(self) -> dict[str, object]:
        # Picklable for worker processes: only the settings travel; descriptors are reopened on first use.
        return {"path": self.path, "max_bytes": self.max_bytes, "backups": self.backups, "fsync": self.fsync,
                "record_content": self.record_content, "background": self.background,
                "queue_size": self.queue_size}

    def __setstate__(self, state: dict[str, object]) -> None:
        state.setdefault("background", False)
        state.setdefault("queue_size", DEFAULT_QUEUE_SIZE)
        self.__dict__.update(state)
        self.lost = 0
        self._pid, self._fd, self._lock_fd = -1, -1, -1
        self._inode, self._end = (-1, -1), -1
        self._shared, self._next_path_check = None, 0.0
        self._thread_lock = threading.Lock()
        self._last_sync = time.monotonic()
        self._queue, self._writer = None, None
        self._enqueue_lock = threading.Lock()

    def _ensure_process(self) -> None:
        # After fork the child gets its own descriptors and a fresh thread lock (the parent's may be held); a
        # background sink gets a fresh queue and thread (the parent's thread did not fork, and the records
        # in the inherited queue are the parent's to write).
        if self._pid == _process[0]:
            return
        self._thread_lock = threading.Lock()
        self._lock_fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT | OPEN_FLAGS, 0o644)
        try:
            self._shared = self._map_shared()
        except BaseException:  # a full disk: the write fails and is retried, without leaking a descriptor
            os.close(self._lock_fd)
            self._lock_fd = -1
            raise
        self._next_path_check = 0.0
        self._fd = self._open_log()
        self._pid = _process[0]
        self._queue, self._writer = None, None
        self._enqueue_lock = threading.Lock()
        self._wake = threading.Event()
        self._space = threading.Event()  # set by the writer thread each time it takes a batch off the queue
        if self.background:
            self._queue = queue.SimpleQueue()
            self._writer = threading.Thread(target=self._drain, args=(self._queue,), daemon=True,
                                             name=f"cascadeflow-audit-{self.path.name}")
            self._writer.start()
            _background_sinks.add(self)
            _drain_at_process_exit()

    def _map_shared(self) -> memoryview:
        """The lock file's first SHARED_BYTES, mapped shared, as two unsigned 64-bit ints (zero: not yet
        known). The file is lengthened under the lock (a mapping past its end would fault) and its bytes
        allocated on disk first: a sparse page (a truncated file's) is only allocated when the mapping is
        written, and on a full file system that kills the process with SIGBUS, where allocating here fails
        like a write (ENOSPC) and the sink's failure policy takes over."""
        portalocker.lock(self._lock_fd, portalocker.LockFlags.EXCLUSIVE)
        try:
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(self._lock_fd, 0, SHARED_BYTES)  # keeps what other writers stored there
            else:
                size = os.fstat(self._lock_fd).st_size
                if size < SHARED_BYTES:
                    write_rest_at(self._lock_fd, bytes(SHARED_BYTES - size), size)
            mapped = mmap.mmap(self._lock_fd, SHARED_BYTES, access=mmap.ACCESS_WRITE)  # shared, writable
        finally:
            portalocker.unlock(self._lock_fd)
        return memoryview(mapped).cast("Q")

    def _release_shared(self) -> None:
        shared, self._shared = self._shared, None
        if shared is not None:
            mapped = shared.obj
            shared.release()
            if isinstance(mapped, mmap.mmap):
                mapped.close()

    def _publish_inode(self) -> None:
        """Tell every writer which file is the live log (lock held)."""
        shared = self._shared
        if shared is not None:
            shared[0], shared[1] = self._inode

    def _open_log(self) -> int:
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | OPEN_FLAGS, 0o644)
        opened = os.fstat(fd)
        self._inode = (opened.st_ino, opened.st_dev)
        self._end = -1  # unknown until this process writes to the file
        return fd

    def write(self, record: AuditRecord) -> None:
        """Append one record; returns only once the whole line is in the file (fsync per policy). In
        background mode it returns once the record is queued (blocking while the queue is full)."""
        # json.dumps escapes line breaks, so the line needs no check for them. Encoded here in background
        # mode too: the queue holds bytes (no caller objects kept alive for the garbage collector to walk,
        # and no later change to the caller's metadata can reach the log).
        self._accept(record_line(record, record_content=self.record_content).encode("utf-8") + b"\n")

    def write_line(self, line: str) -> None:
        """Append one already-serialised JSON line (no newline inside)."""
        if "\n" in line or "\r" in line:
            raise ConfigurationError("an audit line must not contain a line break; serialise with json.dumps")
        self._accept(line.encode("utf-8") + b"\n")

    def _accept(self, data: bytes) -> None:
        """Queue `data` behind the lines queued before it (background mode, in the process that opened the
        queue), else append it now (synchronous mode, closed meanwhile, or the writer thread gone)."""
        if self._queue is not None and self._pid == _process[0] and self._enqueue(data):
            return
        self._append(data)

    def _enqueue(self, item: object, *, bounded: bool = True) -> bool:
        """Queue `item` behind everything queued before it; False when there is no queue (closed, or the
        writer thread is gone: the caller then writes synchronously). A full queue (`queue_size` records)
        blocks the caller until the writer takes a batch off: nothing is dropped. A C SimpleQueue with the
        bound kept here: queue.Queue's put is pure-Python locking on every call."""
        # Under the lock close() takes to retire the queue, so nothing is put behind its stop marker.
        with self._enqueue_lock:
            pending, writer = self._queue, self._writer
            if pending is None or writer is None:
                return False
            while bounded and pending.qsize() >= self.queue_size:
                if not writer.is_alive():  # it died: write what it left, in order, then this record
                    self._queue = self._writer = None
                    self._salvage(pending)
                    return False
                self._space.clear()
                self._wake.set()  # the writer may be pausing between batches
                self._space.wait(0.1)  # re-checked: a wake-up missed between the two calls only delays
            pending.put(item)
            return True

    def _drain(self, pending: queue.SimpleQueue[object]) -> None:
        """The background writer thread: writes queued lines in order, many per locked append, until told
        to stop. It pauses between batches (drain() and close() cut the pause short): a thread that wakes
        often costs the calling threads far more than the writing itself."""
        while True:
            items = [pending.get()]  # waits while the queue is empty
            while len(items) < MAX_BATCH:
                try:
                    items.append(pending.get_nowait())
                except queue.Empty:
                    break
            self._space.set()  # room again for callers blocked on a full queue
            if self._write_batch(items):
                return
            if len(items) < MAX_BATCH:  # the queue ran dry: let records gather unless someone waits for them
                self._wake.wait(BATCH_PAUSE_S)
                self._wake.clear()

    def _write_batch(self, items: list[object]) -> bool:
        """Append the queued lines in `items`, in order; a flush marker (an Event) is set once every line
        before it is written. True when the stop marker was reached (it comes last)."""
        lines: list[bytes] = []
        for item in items:
            if isinstance(item, bytes):
                lines.append(item)
                continue
            self._append_lines(lines)
            lines = []
            if item is _STOP:
                return True
            item.set()  # type: ignore[attr-defined]  # a drain() waiting for the lines before it
        self._append_lines(lines)
        return False

    def _salvage(self, pending: queue.SimpleQueue[object]) -> None:
        """Write synchronously, in order, what a writer thread that died left queued (accepted records are
        not dropped with it)."""
        items: list[object] = []
        while True:
            try:
                items.append(pending.get_nowait())
            except queue.Empty:
                break
        if items:
            log.error("audit sink %r: its writer thread stopped; writing %d queued records synchronously",
                      self, len(items))
            self._write_batch(items)

    def _append_lines(self, lines: list[bytes]) -> None:
        """One locked append per chunk, each small enough to rotate before, as a single line would."""
        limit = min(self.max_bytes or BATCH_BYTES, BATCH_BYTES)
        chunk: list[bytes] = []
        size = 0
        for line in lines:
            if chunk and size + len(line) > limit:
                self._append_logged(b"".join(chunk))
                chunk, size = [], 0
            chunk.append(line)
            size += len(line)
        if chunk:
            self._append_logged(b"".join(chunk))

    def _append_logged(self, data: bytes) -> None:
        """The background writer's append: its caller has returned, so a failure is counted (`lost`) and
        logged with the running count rather than raised."""
        try:
            self._append(data)
        except Exception:
            lines = data.count(b"\n")
            self.lost += lines
            log.exception("audit sink %r failed: %d queued records not written (%d lost by this sink)", self,
                          lines, self.lost)

    def drain(self) -> None:
        """Wait until every record queued so far is written (background mode; a no-op otherwise)."""
        writer = self._writer
        if self._pid != _process[0] or writer is None or not writer.is_alive():
            return
        written = threading.Event()
        if self._enqueue(written, bounded=False):
            self._wake.set()
            while not written.wait(0.1):
                if not writer.is_alive():  # stopped (closed meanwhile): nothing more will be written
                    return

    def _append(self, data: bytes) -> None:
        if self._pid != _process[0]:
            self._ensure_process()
        with self._thread_lock:
            portalocker.lock(self._lock_fd, portalocker.LockFlags.EXCLUSIVE)
            try:
                now = time.monotonic()  # one clock reading per append serves the path check and the fsync policy
                shared, (ino, dev) = self._shared, self._inode
                if shared is None or shared[0] != ino or shared[1] != dev or now >= self._next_path_check:
                    self._follow_path(now)
                fd = self._fd
                size = os.lseek(fd, 0, os.SEEK_END)  # one system call and no stat_result to build
                if self.max_bytes is not None and size > 0 and size + len(data) > self.max_bytes:
                    self._rotate()
                    fd, size = self._fd, 0
                # The tail is our own newline when the file ends where our last write ended (any other
                # writer's bytes, torn or whole, would have moved the end); otherwise look at it.
                elif size > 0 and size != self._end and byte_at(fd, size - 1) != b"\n":
                    data = b"\n" + data  # a writer died mid-line: keep its fragment on a line of its own
                try:
                    written = os.write(fd, data)  # regular files take the whole buffer in one write
                    if written != len(data):
                        write_rest(fd, memoryview(data)[written:])
                except OSError:
                    # A full disk took part of the line: cut it off again (the lock is held, so the bytes past
                    # `size` are ours), so the record is retried whole instead of leaving a torn line.
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, size)
                    raise
                self._end = size + len(data)
                if self.fsync != "never":
                    self._maybe_fsync(now)
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    log.error("audit log disk is full; record not written")
                raise
            finally:
                portalocker.unlock(self._lock_fd)

    def _follow_path(self, now: float) -> None:
        """Reopen the log when another writer (or another tool) moved it on; lock held. The shared inode says
        whether another writer rotated it; the path itself is looked up only then, or once
        PATH_CHECK_INTERVAL_S has passed."""
        self._next_path_check = now + PATH_CHECK_INTERVAL_S
        try:
            live = os.stat(self.path)
        except FileNotFoundError:
            live = None
        if live is None or (live.st_ino, live.st_dev) != self._inode:
            os.close(self._fd)
            self._fd = self._open_log()
        self._publish_inode()

    def _rotate(self) -> None:
        if self.fsync != "never":
            os.fsync(self._fd)
        for index in range(self.backups - 1, 0, -1):
            source = rotated_path(self.path, index)
            if source.exists():
                os.replace(source, rotated_path(self.path, index + 1))
        os.replace(self.path, rotated_path(self.path, 1))
        os.close(self._fd)
        self._fd = self._open_log()
        self._publish_inode()
        log.debug("rotated audit log %s", self.path)

    def _maybe_fsync(self, now: float) -> None:
        if self.fsync == "never":
            return
        if self.fsync == "always" or (isinstance(self.fsync, float | int) and now - self._last_sync >= self.fsync):
            os.fsync(self._fd)
            self._last_sync = now

    def flush(self) -> None:
        """Force written records to disk now (whatever the fsync policy), queued ones included."""
        if self._pid == _process[0]:
            self.drain()
            with self._thread_lock:
                os.fsync(self._fd)

    def close(self) -> None:
        """Drain the queue (background mode), stop the writer thread and close the descriptors."""
        if self._pid != _process[0]:
            return
        with self._enqueue_lock:  # from here on write() writes synchronously
            pending, writer = self._queue, self._writer
            self._queue, self._writer = None, None
        if pending is not None and writer is not None:
            if writer.is_alive():
                pending.put(_STOP)  # after every queued record
                self._wake.set()
                writer.join()
            else:
                self._salvage(pending)
            _background_sinks.discard(self)
        with self._thread_lock:
            if self.fsync != "never":  # an interval policy may hold unsynced records from the last interval
                os.fsync(self._fd)
            for fd in (self._fd, self._lock_fd):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._release_shared()
            self._pid = -1

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_exit_hook_pid = -1  # the process whose multiprocessing exit hook is registered


def _drain_at_process_exit() -> None:
    """multiprocessing ends its child processes with os._exit, which skips atexit: its own exit hook (run
    by those children) drains background sinks there too."""
    global _exit_hook_pid
    if _exit_hook_pid != os.getpid():
        from multiprocessing import util

        util.Finalize(None, _drain_at_exit, exitpriority=100)
        _exit_hook_pid = os.getpid()


@atexit.register
def _drain_at_exit() -> None:
    # Daemon threads are stopped without warning at exit: write what background sinks still hold first.
    for sink in list(_background_sinks):
        try:
            sink.close()
        except Exception:
            log.exception("closing audit sink %r at exit failed", sink)

