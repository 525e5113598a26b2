"""Which folders processes on this machine hold: the sign of life of a run written by another tool.

A process holds a path when it has a file there open (tensorboardX's writer keeps its event file open while
it trains) or names it on its command line (``--output_dir OUT``, ``train.py OUT``: TensorBoard's own writer,
which PyTorch's and the Trainer's use, opens its file for each write only). The console and the CLI name the
folders they read, and are not counted.

One scan of this user's processes (psutil; other users' files are not readable without privileges), taken by
``sample`` on the watcher's schedule or by ``run ls`` once, and kept for ``MAX_AGE`` seconds: asking whether
a folder is held reads the last scan, and scans again only when it is older than that.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil

MAX_AGE = 10.0  # seconds a scan stands for the machine

_scan: tuple[float, frozenset[str]] | None = None  # (monotonic time of the scan, held paths)


def _reader(cmdline: list[str]) -> bool:
    """Whether a command line is kidconsole's own (a console or a CLI command reading the runs)."""
    if not cmdline:
        return False
    if os.path.basename(cmdline[0]) == "kidconsole":
        return True
    return any(a == "-m" and b.split(".")[0] == "kidconsole" for a, b in zip(cmdline, cmdline[1:]))


def _named(cmdline: list[str], cwd: str) -> set[str]:
    """The paths a command line names: its arguments and the values of ``--key=value`` options."""
    out = set()
    for arg in cmdline[1:]:
        value = arg.split("=", 1)[1] if arg.startswith("-") and "=" in arg else None if arg.startswith("-") else arg
        if value and (os.sep in value or os.path.exists(os.path.join(cwd, value))):
            out.add(os.path.realpath(os.path.join(cwd, value)))
    return out


def sample() -> frozenset[str]:
    """Scan now: the paths this user's processes hold (files open, paths named on their command lines)."""
    global _scan
    me, mine = os.getuid(), os.getpid()
    paths: set[str] = set()
    for proc in psutil.process_iter(["uids", "cmdline"]):
        try:
            uids, cmdline = proc.info["uids"], proc.info["cmdline"] or []
            if uids is None or uids.real != me or proc.pid == mine or _reader(cmdline):
                continue
            paths.update(f.path for f in proc.open_files())
            paths.update(_named(cmdline, proc.cwd()))
        except psutil.Error:
            continue
    _scan = (time.monotonic(), frozenset(paths))
    return _scan[1]


def open_paths(max_age: float = MAX_AGE) -> frozenset[str]:
    """The last scan's paths, scanning again when it is older than ``max_age`` seconds."""
    if _scan is None or time.monotonic() - _scan[0] > max_age:
        return sample()
    return _scan[1]


def held(folder: str | Path, max_age: float = MAX_AGE) -> bool:
    """Whether a process of this user here holds ``folder`` or a path in it."""
    folder = os.path.realpath(folder)
    prefix = folder + os.sep
    return any(p == folder or p.startswith(prefix) for p in open_paths(max_age))
