"""How status.json names a process so that a reader can tell it later from a stranger on a reused pid.

A process's identity is its start in clock ticks since boot (``/proc/<pid>/stat`` field 22), unmoved by
clock steps, and psutil's create_time for records written before it (or where /proc is unreadable).
Both halves record it: the launcher and the supervisor for the processes they start, a trainer started by
hand for itself. Light: psutil only.
"""

from __future__ import annotations

import os

import psutil


def start_ticks(pid: int) -> int | None:
    """The process's start in clock ticks since boot (/proc/<pid>/stat field 22); None where unreadable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    # field 2 (the command) may hold spaces and parentheses: count fields after the last ')'
    fields = stat[stat.rfind(b")") + 2:].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def identity(pid: int) -> dict:
    """What status.json records so the process is recognised later: create_time and start_ticks."""
    out: dict = {"start_ticks": start_ticks(pid)}
    try:
        out["create_time"] = psutil.Process(pid).create_time()
    except psutil.Error:
        out["create_time"] = None
    return out


def this_process() -> dict:
    """pid, pgid, sid and identity of the calling process, for a process recording itself as the run's."""
    me = os.getpid()
    return {"pid": me, "pgid": os.getpgid(0), "sid": os.getsid(0), **identity(me)}
