"""Whether a run is alive: the one rule that `run stop`, `run resume`, `run ls`, the queue and the console share.

A run is alive while any of its processes is: the supervisor, the launcher, the
trainer ranks, anything still in the run's session (ranks can leave the process
group or outlive a killed supervisor, and keep the session). Where its processes
cannot be seen from here (another host, no pid recorded), a fresh heartbeat is
the sign of life.

A process is recognised as the run's by its start, compared in clock ticks since
boot (``rundir.process``; wall-clock start times move when the system clock
steps): the recorded supervisor started exactly then, the run's other processes
then or later. A status that records no start (written by an old version, or by
hand) tells nothing by time. Reading a state gives such a pid the benefit of the
doubt (a live pid reads as a live run); signalling one (``strict``: `run stop`)
needs proof, so that a stranger on a reused pid is never signalled: its command
line must name the run directory, as every process of a run does (the
supervisor's ``RUN_DIR``, the ranks' ``--run-dir``, their workers' copies).
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import psutil

from kidconsole import rundir
from kidconsole.rundir.process import identity, start_ticks  # noqa: F401 (identity: what the rule compares)
from kidconsole.rundir.records import Status
from kidconsole.runs.system import run_pids

HEARTBEAT_FRESH = 60.0  # seconds: a heartbeat (or any event) this recent is a sign of life
CREATE_TIME_TOLERANCE = 0.05  # seconds; only for records without start_ticks (psutil's clock-tick resolution)


def _names_run_dir(proc: psutil.Process, run_dir: Path) -> bool:
    """Whether the process's command line names ``run_dir`` or a file in it (relative to its cwd)."""
    try:
        args, cwd = proc.cmdline(), proc.cwd()
    except psutil.Error:
        return False
    target = os.path.realpath(run_dir)
    for arg in args:
        if not arg or arg.startswith("-"):
            continue
        path = os.path.realpath(os.path.join(cwd, arg))
        if path == target or os.path.dirname(path) == target:
            return True
    return False


def _proven(pid: int, run_dir: Path, status: Status, *, exact: bool, strict: bool) -> bool:
    """Whether ``pid`` is the run's: started when the recorded supervisor did (``exact``) or later (another
    process of the run). Without a recorded start: yes unless ``strict``, then only when its command line
    names the run."""
    if isinstance(status.start_ticks, int):
        now = start_ticks(pid)
        if now is not None:
            return now == status.start_ticks if exact else now >= status.start_ticks
    try:
        proc = psutil.Process(pid)
        created = proc.create_time()
    except psutil.Error:
        return False
    if isinstance(status.create_time, (int, float)):
        if exact:
            return abs(created - status.create_time) <= CREATE_TIME_TOLERANCE
        return created >= status.create_time - CREATE_TIME_TOLERANCE
    return _names_run_dir(proc, run_dir) if strict else True


def local(status: Status) -> bool:
    """Whether the run's processes can be seen from here: a pid recorded, on this host."""
    return isinstance(status.pid, int) and status.pid > 0 and on_this_host(status)


def on_this_host(status: Status) -> bool:
    return status.host in (None, socket.gethostname())


def supervisor_alive(run_dir: str | Path, status: Status, *, strict: bool = False) -> bool | None:
    """Whether the recorded supervisor itself still runs (a stranger on its pid is not it); None where unknown.
    ``strict``: only when that is proven (see the module's docstring)."""
    if not local(status):
        return None
    pid = status.pid
    try:
        if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return False
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True
    return _proven(pid, Path(run_dir), status, exact=True, strict=strict)


def run_processes(run_dir: str | Path, status: Status, *, strict: bool = False) -> list[psutil.Process]:
    """The run's live processes: the supervisor's tree and every process still in its session, never one
    started before the run ([] where its processes cannot be seen from here). ``strict``: each proven the
    run's, for signalling (see the module's docstring)."""
    if not local(status):
        return []
    run_dir = Path(run_dir)
    pid = status.pid
    sid = status.sid if isinstance(status.sid, int) else pid
    if supervisor_alive(run_dir, status, strict=strict) is False and psutil.pid_exists(pid) and not _zombie(pid):
        # another process on the supervisor's pid: the kernel reuses a pid only once no process has it
        # as its session or group, so nothing of the old run is left (and the stranger is not to be touched)
        return []
    out = []
    for p in run_pids(pid, sid):
        try:
            proc = psutil.Process(p)
            if proc.status() != psutil.STATUS_ZOMBIE and _proven(p, run_dir, status, exact=False, strict=strict):
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


def run_alive(run_dir: str | Path, status: Status, *, last_sign: float | None = None,
              now: float | None = None) -> bool | None:
    """True while any process of the run lives; False once every one is gone. Where its processes
    cannot be seen from here: True while its heartbeat (``last_sign``) is fresh, else None (unknown)."""
    if local(status):
        return supervisor_alive(run_dir, status) is True or bool(run_processes(run_dir, status))
    return True if heartbeat_fresh(last_sign, now) else None


def last_sign(run_dir, status: Status) -> float | None:
    """The latest sign of life readable without parsing events: status.json's update, events.jsonl's mtime."""
    times = [status.updated_at]
    try:
        times.append(os.stat(os.path.join(run_dir, rundir.EVENTS)).st_mtime)
    except OSError:
        pass
    times = [t for t in times if isinstance(t, (int, float))]
    return max(times) if times else None
