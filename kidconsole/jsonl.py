"""JSON Lines read one line at a time, each line with its number, so a bad line can be named
(``file:line: reason``) and skipped or refused by the caller, never silently lost. Lines are
decoded one by one, so a bad byte is found with its line and the others still read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from kidconsole.bounded import open_regular
from kidconsole.errors import KidconsoleError


def read_jsonl(path: str | Path, what: str) -> Iterator[tuple[int, Any, str | None]]:
    """``(line number, object, None)`` for each non-blank line, ``(line number, None, reason)`` for a
    line that is not UTF-8 or not JSON. A file that cannot be opened is an error naming ``what`` and
    the path."""
    path = Path(path)
    try:
        fh = open_regular(path)  # a FIFO would block for good, a device never end
    except OSError as e:
        raise KidconsoleError(f"cannot open {what} {path}: {e.strerror}") from e
    with fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield lineno, None, f"not UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1})"
                continue
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line), None
            except json.JSONDecodeError as e:
                yield lineno, None, f"not JSON ({e.msg})"


def bounded_lines(fh, limit: int) -> Iterator[tuple[int, bytes | None]]:
    """``(byte offset, line)`` of a binary file, reading at most ``limit`` bytes at a time: a line longer
    than that is passed over to its end and given as ``(offset, None)``, never held whole in memory."""
    pos = 0
    while True:
        raw = fh.readline(limit + 1)
        if not raw:
            return
        start = pos
        pos += len(raw)
        if len(raw) > limit:
            while not raw.endswith(b"\n"):
                raw = fh.readline(limit + 1)
                if not raw:
                    break
                pos += len(raw)
            yield start, None
            continue
        yield start, raw
