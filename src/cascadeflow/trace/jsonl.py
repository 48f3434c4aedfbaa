"""The default audit sink: one JSON line per record in a size-rotated file shared by threads and processes.

Every record is written with a single `os.write` on an O_APPEND descriptor while holding an exclusive
`fcntl.flock` on a sibling lock file (`<log>.lock`, never rotated, so every process locks the same inode).
Under that lock each writer re-checks that its descriptor still points at the live file (another process
may have rotated it), rotates when the next line would pass `max_bytes`, and starts a fresh line if a killed
writer left a torn one, so a torn fragment can never swallow a later record. Unix only (fcntl).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import threading
import time
from pathlib import Path
from typing import Self

from cascadeflow.errors import ConfigurationError
from cascadeflow.trace.records import AuditRecord
from cascadeflow.trace.redact import record_line

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_BACKUPS = 10
FSYNC_POLICIES = ("never", "always")


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
    """

    def __init__(self, path: str | os.PathLike[str], *, max_bytes: int | None = DEFAULT_MAX_BYTES,
                 backups: int = DEFAULT_BACKUPS, fsync: str | float = "never", record_content: bool = False):
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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._pid = -1
        self._fd = -1
        self._lock_fd = -1
        self._inode = (-1, -1)  # (st_ino, st_dev) of the file self._fd has open
        self._end = -1  # the file's size right after our last write to it
        self._thread_lock = threading.Lock()
        self._last_sync = time.monotonic()
        self._ensure_process()

    def __repr__(self) -> str:
        return f"JsonlSink({str(self.path)!r})"

    def __getstate__(self) -> dict[str, object]:
        # Picklable for worker processes: only the settings travel; descriptors are reopened on first use.
        return {"path": self.path, "max_bytes": self.max_bytes, "backups": self.backups, "fsync": self.fsync,
                "record_content": self.record_content}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._pid, self._fd, self._lock_fd = -1, -1, -1
        self._inode, self._end = (-1, -1), -1
        self._thread_lock = threading.Lock()
        self._last_sync = time.monotonic()

    def _ensure_process(self) -> None:
        # After fork the child gets its own descriptors and a fresh thread lock (the parent's may be held).
        if self._pid == os.getpid():
            return
        self._thread_lock = threading.Lock()
        self._lock_fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self._fd = self._open_log()
        self._pid = os.getpid()

    def _open_log(self) -> int:
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        opened = os.fstat(fd)
        self._inode = (opened.st_ino, opened.st_dev)
        self._end = -1  # unknown until this process writes to the file
        return fd

    def write(self, record: AuditRecord) -> None:
        """Append one record; returns only once the whole line is in the file (fsync per policy)."""
        # json.dumps escapes line breaks, so the line needs no check for them
        self._append(record_line(record, record_content=self.record_content).encode("utf-8") + b"\n")

    def write_line(self, line: str) -> None:
        """Append one already-serialised JSON line (no newline inside)."""
        if "\n" in line or "\r" in line:
            raise ConfigurationError("an audit line must not contain a line break; serialise with json.dumps")
        self._append(line.encode("utf-8") + b"\n")

    def _append(self, data: bytes) -> None:
        self._ensure_process()
        with self._thread_lock:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                size = self._current_size(len(data))
                # The tail is our own newline when the file ends where our last write ended (any other
                # writer's bytes, torn or whole, would have moved the end); otherwise look at it.
                if size > 0 and size != self._end and os.pread(self._fd, 1, size - 1) != b"\n":
                    data = b"\n" + data  # a writer died mid-line: keep its fragment on a line of its own
                _write_all(self._fd, data)
                self._end = size + len(data)
                self._maybe_fsync()
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _current_size(self, incoming: int) -> int:
        """Size of the live file after reopening (rotated by another process) or rotating; lock held. One
        stat of the path: while it is the inode our descriptor has open, its size is our file's size."""
        try:
            live = os.stat(self.path)
        except FileNotFoundError:
            live = None
        if live is None or (live.st_ino, live.st_dev) != self._inode:
            os.close(self._fd)
            self._fd = self._open_log()
            live = os.fstat(self._fd)
        if self.max_bytes is not None and live.st_size > 0 and live.st_size + incoming > self.max_bytes:
            self._rotate()
            return 0
        return live.st_size

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
        log.debug("rotated audit log %s", self.path)

    def _maybe_fsync(self) -> None:
        if self.fsync == "never":
            return
        now = time.monotonic()
        if self.fsync == "always" or now - self._last_sync >= self.fsync:
            os.fsync(self._fd)
            self._last_sync = now

    def flush(self) -> None:
        """Force written records to disk now (whatever the fsync policy)."""
        if self._pid == os.getpid():
            with self._thread_lock:
                os.fsync(self._fd)

    def close(self) -> None:
        if self._pid != os.getpid():
            return
        with self._thread_lock:
            if self.fsync != "never":  # an interval policy may hold unsynced records from the last interval
                os.fsync(self._fd)
            for fd in (self._fd, self._lock_fd):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._pid = -1

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _write_all(fd: int, data: bytes) -> None:
    # Regular files take the whole buffer in one write; the loop only matters on a nearly full disk.
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except InterruptedError:
            continue
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                log.error("audit log disk is full; record not written")
            raise
        view = view[written:]
