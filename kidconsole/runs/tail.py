"""Follow a JSONL file by byte offset.

Only complete lines are consumed: a partial last line is read again once its
end arrives. A truncated or replaced file (other inode, shorter than the
offset, or different first bytes) is read again from the start and counted in
``resets``, so a reader that rebuilds its state on a reset never counts
history twice. Lines that are not JSON objects are skipped and counted.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from kidconsole.bounded import NotRegularFile, open_regular

HEAD_BYTES = 64  # fingerprint of the file's start: catches a file rewritten in place


def parse_lines(lines: list[bytes]) -> tuple[list[dict], int]:
    """JSON objects from whole lines (without their newlines); returns (objects, bad line count).
    Blank lines are neither objects nor bad. orjson: about twice the standard parser's speed, and it
    refuses what no reader can use (NaN, numbers beyond a double or 64-bit integer, invalid UTF-8)."""
    loads = orjson.loads
    try:  # the common case, every line an object, at C speed; else line by line
        objs = list(map(loads, lines))
        if set(map(type, objs)) <= {dict}:
            return objs, 0
    except orjson.JSONDecodeError:
        pass
    out, bad = [], 0
    for ln in lines:
        if not ln or ln.isspace():
            continue
        try:
            obj = loads(ln)
        except orjson.JSONDecodeError:
            bad += 1
            continue
        if type(obj) is dict:
            out.append(obj)
        else:
            bad += 1
    return out, bad


class JsonlTail:
    """Reads the complete lines appended to ``path`` since the last call."""

    def __init__(self, path: str | Path, offset: int = 0):
        self.path = Path(path)
        self.offset = offset        # byte offset of the first line not yet read
        self.bad_lines = 0          # garbage lines skipped in the current file
        self.resets = 0             # times the file was truncated or replaced
        self._ino: int | None = None
        self._head = b""

    def _replaced(self, fh, st: os.stat_result) -> bool:
        if self._ino is None:
            return False
        if st.st_ino != self._ino or st.st_size < self.offset:
            return True
        if self._head:
            fh.seek(0)
            return fh.read(len(self._head)) != self._head
        return False

    def read_lines(self, max_bytes: int | None = None) -> list[bytes]:
        """Complete new lines (without newlines), at most about ``max_bytes`` of them."""
        try:
            fh = open_regular(self.path)  # a FIFO would block the reader's thread for good
        except (FileNotFoundError, NotRegularFile):
            return []
        with fh:
            st = os.fstat(fh.fileno())
            if self._replaced(fh, st):
                self.offset, self.bad_lines, self._head = 0, 0, b""
                self.resets += 1
            self._ino = st.st_ino
            if len(self._head) < HEAD_BYTES:
                fh.seek(0)
                self._head = fh.read(min(HEAD_BYTES, st.st_size))
            if st.st_size <= self.offset:
                return []
            fh.seek(self.offset)
            want = st.st_size - self.offset
            data = fh.read(want if max_bytes is None else min(want, max_bytes))
        end = data.rfind(b"\n")
        if end < 0:
            if max_bytes is not None and len(data) < want:
                # a single line longer than max_bytes: take it whole next time
                return self.read_lines(None)
            return []
        self.offset += end + 1
        return data[:end].split(b"\n")

    def read_new(self, max_bytes: int | None = None) -> list[dict]:
        """The JSON objects of the complete new lines; garbage lines go to ``bad_lines``."""
        objs, bad = parse_lines(self.read_lines(max_bytes))
        self.bad_lines += bad
        return objs


def line_start_at_or_after(path: str | Path, offset: int) -> int:
    """The offset of the first line that starts at or after ``offset``."""
    if offset <= 0:
        return 0
    with open_regular(path) as fh:
        fh.seek(offset - 1)
        pos = offset - 1
        while True:
            chunk = fh.read(1 << 16)
            if not chunk:
                return pos
            i = chunk.find(b"\n")
            if i >= 0:
                return pos + i + 1
            pos += len(chunk)


def read_range(path: str | Path, start: int, end: int) -> tuple[list[dict], int]:
    """Parse the whole lines in [start, end) (both at line starts): (objects, bad lines)."""
    with open_regular(path) as fh:
        fh.seek(start)
        data = fh.read(end - start)
    lines = data.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()  # after the last newline
    return parse_lines(lines)
