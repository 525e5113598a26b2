"""The state of a run, derived from status.json, its process and its heartbeats.

The trainer and the supervisor write starting/running/evaluating and the final
states; readers derive the other two: ``interrupted`` (the recorded process is
gone and no final state was written) and ``stalled`` (alive, but no sign of
life for ``stall_after`` seconds).
"""

from __future__ import annotations

import socket
import time

import psutil

from kidconsole import rundir

STALL_AFTER = 300.0  # seconds without a heartbeat or any event before a live run shows as stalled
CREATE_TIME_TOLERANCE = 0.05  # seconds; psutil's start times are stable to the clock tick


def process_alive(status: dict) -> bool | None:
    """Whether the run's recorded process still runs: None when it cannot be told here
    (no pid recorded, or the run lives on another host). A reused pid is not the run:
    its start time differs from the recorded one."""
    pid = status.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return None
    if status.get("host") not in (None, socket.gethostname()):
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        created = proc.create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True
    recorded = status.get("create_time")
    return not isinstance(recorded, (int, float)) or abs(created - recorded) <= CREATE_TIME_TOLERANCE


def derive_state(status: dict, *, alive: bool | None, last_sign: float | None, end_event: dict | None = None,
                 now: float | None = None, stall_after: float = STALL_AFTER) -> str:
    """One of rundir's states. ``last_sign``: the latest time the run showed life
    (an event, a status update); ``end_event``: the trainer's ``end`` event, if any."""
    now = time.time() if now is None else now
    state = status.get("state")
    if state in rundir.FINAL_STATES:
        return state
    if state is None and end_event and end_event.get("state") in rundir.FINAL_STATES:
        return end_event["state"]
    if alive is False:
        return rundir.INTERRUPTED
    if last_sign is not None and now - last_sign > stall_after:
        return rundir.STALLED
    return state if state in rundir.LIVE_STATES else (rundir.RUNNING if last_sign is not None else rundir.STARTING)
