"""Whether a run is alive: the one rule that `run stop`, `run resume`, `run ls` and the console share.

A run is alive while any of its processes is: the supervisor, the launcher, the
trainer ranks, anything still in the run's session (ranks can leave the process
group or outlive a killed supervisor, and keep the session). Where its processes
cannot be seen from here (another host, no pid recorded), a fresh heartbeat is
the sign of life.

Process identity is clock-independent: a process is the run's when it started at
or after the recorded supervisor, compared in clock ticks since boot
(``/proc/<pid>/stat`` field 22). Wall-clock start times (psutil's create_time)
move when the system clock steps, and would make a live run read as gone.
"""

from __future__ import annotations

import os
import socket
import time

import psutil

from kidconsole import rundir
from kidconsole.runs.system import run_pids

HEARTBEAT_FRESH = 60.0  # seconds: a heartbeat (or any event) this recent is a sign of life
CREATE_TIME_TOLERANCE = 0.05  # seconds; only for records without start_ticks (psutil's clock-tick resolution)


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


def _started_since(pid: int, status: dict, *, exact: bool) -> bool:
    """Whether ``pid`` started when the recorded supervisor did (``exact``) or later (a child).
    True when it cannot be told (no start recorded)."""
    ticks = status.get("start_ticks")
    if isinstance(ticks, int):
        now = start_ticks(pid)
        if now is not None:
            return now == ticks if exact else now >= ticks
    created = status.get("create_time")
    if not isinstance(created, (int, float)):
        return True
    try:
        now_created = psutil.Process(pid).create_time()
    except psutil.Error:
        return False
    if exact:
        return abs(now_created - created) <= CREATE_TIME_TOLERANCE
    return now_created >= created - CREATE_TIME_TOLERANCE


def local(status: dict) -> bool:
    """Whether the run's processes can be seen from here: a pid recorded, on this host."""
    pid = status.get("pid")
    return isinstance(pid, int) and pid > 0 and status.get("host") in (None, socket.gethostname())


def supervisor_alive(status: dict) -> bool | None:
    """Whether the recorded supervisor itself still runs (a reused pid is not it); None where unknown."""
    if not local(status):
        return None
    pid = status["pid"]
    try:
        if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return False
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True
    return _started_since(pid, status, exact=True)


def run_processes(status: dict) -> list[psutil.Process]:
    """The run's live processes: the supervisor's tree and every process still in its session,
    never one started before the run ([] where its processes cannot be seen from here)."""
    if not local(status):
        return []
    pid = status["pid"]
    sid = status.get("sid") if isinstance(status.get("sid"), int) else pid
    if supervisor_alive(status) is False and psutil.pid_exists(pid) and not _zombie(pid):
        # the pid was reused, so the kernel had freed it, which it does only once no process
        # has it as its session or group: nothing of the old run is left
        return []
    out = []
    for p in run_pids(pid, sid):
        try:
            proc = psutil.Process(p)
            if proc.status() != psutil.STATUS_ZOMBIE and _started_since(p, status, exact=False):
                out.append(proc)
        except psutil.Error:
            continue
    return out


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def heartbeat_fresh(last_sign: float | None, now: float | None = None, fresh: float = HEARTBEAT_FRESH) -> bool:
    now = time.time() if now is None else now
    return last_sign is not None and abs(now - last_sign) <= fresh


def run_alive(status: dict, *, last_sign: float | None = None, now: float | None = None) -> bool | None:
    """True while any process of the run lives; False once every one is gone. Where its processes
    cannot be seen from here: True while its heartbeat (``last_sign``) is fresh, else None (unknown)."""
    if local(status):
        return supervisor_alive(status) is True or bool(run_processes(status))
    return True if heartbeat_fresh(last_sign, now) else None


def pid_of_this_process() -> dict:
    """pid, pgid, sid and identity of the calling process, for a supervisor recording itself."""
    me = os.getpid()
    return {"pid": me, "pgid": os.getpgid(0), "sid": os.getsid(0), **identity(me)}


def last_sign(run_dir, status: dict) -> float | None:
    """The latest sign of life readable without parsing events: status.json's update, events.jsonl's mtime."""
    times = [status.get("updated_at")]
    try:
        times.append(os.stat(os.path.join(run_dir, rundir.EVENTS)).st_mtime)
    except OSError:
        pass
    times = [t for t in times if isinstance(t, (int, float))]
    return max(times) if times else None
