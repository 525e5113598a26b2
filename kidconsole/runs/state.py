"""The state of a run, derived from status.json, its liveness (liveness.py) and its heartbeats.

The trainer and the supervisor write starting/running/evaluating and the final
states; readers derive the other two: ``interrupted`` (every process of the run
is gone and no final state was written) and ``stalled`` (alive, but no sign of
life for ``stall_after`` seconds).
"""

from __future__ import annotations

import time

from kidconsole import rundir

STALL_AFTER = 300.0  # seconds without a heartbeat or any event before a live run shows as stalled


def written_final(status: dict, end_event: dict | None = None) -> str | None:
    """The final state the run wrote (status.json, else the trainer's ``end`` event), if any."""
    state = status.get("state")
    if state in rundir.FINAL_STATES:
        return state
    if state is None and end_event and end_event.get("state") in rundir.FINAL_STATES:
        return end_event["state"]
    return None


def derive_state(status: dict, *, alive: bool | None, last_sign: float | None, end_event: dict | None = None,
                 now: float | None = None, stall_after: float = STALL_AFTER) -> str:
    """One of rundir's states. ``alive``: liveness.run_alive; ``last_sign``: the latest time the
    run showed life (an event, a status update); ``end_event``: the trainer's ``end`` event, if any."""
    now = time.time() if now is None else now
    final = written_final(status, end_event)
    if final:
        return final
    if status.get("state") == rundir.QUEUED:  # no process yet: nothing to watch
        return rundir.QUEUED
    if alive is False:
        return rundir.INTERRUPTED
    if last_sign is not None and now - last_sign > stall_after:
        return rundir.STALLED
    state = status.get("state")
    return state if state in rundir.LIVE_STATES else (rundir.RUNNING if last_sign is not None else rundir.STARTING)
