"""Files from disk read with bounds: only regular files, and never more than a given number of bytes.

Whatever sits in a run directory or a config folder may be broken or hostile: a FIFO (opening it for
reading waits for a writer, for good), a character device (``/dev/urandom`` never ends; its size reads
0), a symlink to either, or a regular file of gigabytes. Every reader of such a file opens it here:
without blocking, so a FIFO's open returns at once, refused unless ``fstat`` says it is a regular file,
then read only up to the bytes it was given. The errors are ``OSError``s, so a reader that already
treats an unreadable file as absent treats these so too.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


class NotRegularFile(OSError):
    """The path is a FIFO, a device, a socket or a directory (or a symlink to one): not read."""


class FileTooLarge(OSError):
    """The file holds more bytes than its reader takes."""

    def __init__(self, path: str | Path, size: int, limit: int):
        super().__init__(errno.EFBIG, f"{size:,} bytes, over the {limit:,}-byte limit", str(path))
        self.size, self.limit = size, limit


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def regular_fd(path: str | Path) -> int:
    """A file descriptor of ``path`` open for reading, if it is a regular file (symlinks followed); else
    ``NotRegularFile`` (never blocks on a FIFO). One open and one fstat: what a plain open costs."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(errno.EINVAL, f"{_kind(mode)}, not a regular file: not read", str(path))
        os.set_blocking(fd, True)
        return fd
    except BaseException:
        os.close(fd)
        raise


def open_regular(path: str | Path) -> BinaryIO:
    """``path`` opened for binary reading, if it is a regular file (``regular_fd``)."""
    return os.fdopen(regular_fd(path), "rb")


def read_capped(path: str | Path, limit: int) -> bytes:
    """The whole of a regular file of at most ``limit`` bytes; ``FileTooLarge`` (checked before reading)
    for a larger one."""
    with open_regular(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        data = fh.read(limit + 1) if size <= limit else b""
    if max(size, len(data)) > limit:  # it may have grown since the fstat
        raise FileTooLarge(path, max(size, len(data)), limit)
    return data


def read_tail(path: str | Path, max_bytes: int) -> tuple[bytes, bool]:
    """The last ``max_bytes`` of a regular file at most, and whether it was cut (its start left out)."""
    with open_regular(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        start = max(0, size - max_bytes)
        fh.seek(start)
        return fh.read(max_bytes), start > 0


def read_from(path: str | Path, offset: int, max_bytes: int) -> tuple[bytes, int]:
    """At most ``max_bytes`` of a regular file from ``offset`` on (from its start when it is now shorter
    than ``offset``: truncated or replaced), and the offset after them."""
    with open_regular(path) as fh:
        if os.fstat(fh.fileno()).st_size < offset:
            offset = 0
        fh.seek(offset)
        data = fh.read(max_bytes)
    return data, offset + len(data)
