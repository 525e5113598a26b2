"""A run's log (stdout.log) read with bounds, for the console's Log tab and ``run logs`` alike.

Only a regular file is read (``kidconsole.bounded``): a stdout.log that is a symlink to ``/dev/urandom``
once grew the console's Log tab to 9.3 GB in 20 s and ran ``run logs`` out of memory. The tail is read
from the last ``max_bytes`` only, and a follow reads at most ``FOLLOW_BYTES`` a poll.
"""

from __future__ import annotations

import codecs
import time
from pathlib import Path
from typing import Callable

from kidconsole.bounded import NotRegularFile, read_from, read_tail
from kidconsole.shown import visible

TAIL_BYTES = 256 << 10
FOLLOW_BYTES = 1 << 20  # a poll's most; a log written faster is read over the next polls


def log_tail(path: str | Path, n: int = 50, max_bytes: int = TAIL_BYTES) -> list[str]:
    """The last ``n`` lines of a log, from its last ``max_bytes`` at most (a progress bar's carriage returns
    keep its last state); a log that is not a regular file (a FIFO, a symlink to a device) is not read,
    and the one line returned says so."""
    try:
        data, cut = read_tail(path, max_bytes)
    except NotRegularFile as e:
        return [f"({Path(path).name}: {e.strerror})"]
    except OSError:
        return []
    lines = data.decode("utf-8", errors="replace").split("\n")
    if cut:
        lines = lines[1:]  # the first line was cut
    if lines and lines[-1] == "":
        lines.pop()
    return [ln.rsplit("\r", 1)[-1] if "\r" in ln.rstrip("\r") else ln.rstrip("\r") for ln in lines[-n:]]


def follow(path: str | Path, write: Callable[[str], None], every: float = 0.5,
           until: Callable[[], bool] = lambda: False) -> None:
    """Write what is appended to the log from now on, until ``until()`` (Ctrl-C for a user); a truncated
    or replaced log is followed from its start; a log that is not a regular file is not read."""
    path = Path(path)
    try:
        offset = path.stat().st_size
    except OSError:
        offset = 0
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a character may span two reads
    while not until():
        time.sleep(every)
        try:
            data, offset = read_from(path, offset, FOLLOW_BYTES)
        except OSError:  # absent for now, or not a regular file: nothing to show
            continue
        if data:
            write(decoder.decode(data))


def print_log(path: str | Path, lines: int, follow_it: bool) -> int:
    """``run logs``: the last ``lines`` lines, then (``follow_it``) what comes, until Ctrl-C; control
    characters other than line ends shown as escapes (a log line must not drive the terminal)."""
    for line in log_tail(path, lines):
        print(visible(line))
    if follow_it:
        follow(path, lambda text: print(visible(text, lines=True), end="", flush=True))
    return 0
