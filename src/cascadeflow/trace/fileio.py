"""Plain file-descriptor writes the audit log needs under its lock: a line the disk took only in part is
finished, a region is written whole at an offset, one byte is read back. No state, no policy."""

from __future__ import annotations

import os


def byte_at(fd: int, offset: int) -> bytes:
    """One byte of the log, read under the lock (appends go to the end whatever the descriptor's offset)."""
    os.lseek(fd, offset, os.SEEK_SET)
    return os.read(fd, 1)


def write_rest(fd: int, rest: memoryview) -> None:
    """The rest of a line the file took only in part (a nearly full disk). os.write retries EINTR itself
    (PEP 475); ENOSPC reaches the caller."""
    while rest:
        rest = rest[os.write(fd, rest):]


def write_rest_at(fd: int, data: bytes, offset: int) -> None:
    """pwrite all of `data` at `offset` (a short write is continued)."""
    while data:
        written = os.pwrite(fd, data, offset)
        data, offset = data[written:], offset + written
