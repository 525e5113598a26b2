"""The state rule: the one function that decides a run's state (``decide``); every reader calls it.

The trainer, the supervisor and the queue write ``queued``, ``starting``/``running``/``evaluating`` and the
final states (``rundir.write_end``); readers derive the others:

- ``interrupted``: every process of the run is gone (or its scheduler's job ended) and no final state was written;
- ``stalled``: alive, but no sign of life for ``stall_after`` seconds, or no progress for as long: the step and
  the work (batches) stand still however regular the heartbeat (a read blocked on a hung mount beats on);
- ``pending``: its scheduler holds it in a queue (a Slurm job waiting), whatever the last attempt wrote.

What the rule needs beyond the run's own files (its processes, its scheduler's view) comes as ``Signs``
from the run's kind (kinds/), never from a subprocess started here: a Slurm job's state is a sample the
watcher (or ``run ls``) took on its own schedule.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from kidconsole import rundir
from kidconsole.rundir.records import Status

STALL_AFTER = 300.0  # seconds without a sign of life, or without progress, before a live run shows as stalled

Scheduler = Literal["waiting", "active", "ended"]


@dataclass(frozen=True)
class Signs:
    """What a run's kind tells about it beyond its files. ``alive``: any process of the run lives (None:
    its processes cannot be seen from here); ``scheduler``: its job's state as last sampled (None: no
    scheduler, or no sample)."""
    alive: bool | None = None
    scheduler: Scheduler | None = None


def written_final(status: Status, end_event: dict | None = None) -> str | None:
    """The final state the run wrote (status.json, else its ``end`` event), if any."""
    if status.state in rundir.FINAL_STATES:
        return status.state
    if status.state is None and end_event and end_event.get("state") in rundir.FINAL_STATES:
        return end_event["state"]
    return None


def decide(status: Status, *, signs: Signs, end_event: dict | None = None, last_sign: float | None = None,
           last_progress: float | None = None, now: float | None = None, stall_after: float = STALL_AFTER) -> str:
    """One of rundir's states. ``last_sign``: the latest time the run showed life (an event, a status
    update); ``last_progress``: the latest time it showed progress (its step or work advanced, an event
    other than a heartbeat); ``end_event``: its ``end`` event, if read."""
    now = time.time() if now is None else now
    return with_scheduler(_own_state(status, signs.alive, end_event, last_sign, last_progress, now, stall_after),
                          signs.scheduler)


def _own_state(status: Status, alive: bool | None, end_event: dict | None, last_sign: float | None,
               last_progress: float | None, now: float, stall_after: float) -> str:
    final = written_final(status, end_event)
    if final:
        return final
    if status.state == rundir.QUEUED:  # no process yet: nothing to watch
        return rundir.QUEUED
    if alive is False:
        return rundir.INTERRUPTED
    quiet = last_sign is not None and now - last_sign > stall_after
    stuck = last_progress is not None and now - last_progress > stall_after
    if quiet or stuck:
        return rundir.STALLED
    state = status.state
    return state if state in rundir.LIVE_STATES else (rundir.RUNNING if last_sign is not None else rundir.STARTING)


def with_scheduler(state: str, scheduler: Scheduler | None) -> str:
    """The run's own state with its scheduler's: a job in the queue is ``pending`` whatever the last attempt
    wrote; a job that ended while the run had not is ``interrupted``."""
    if scheduler == "waiting":
        return rundir.PENDING
    if scheduler == "ended" and state not in rundir.FINAL_STATES:
        return rundir.INTERRUPTED
    return state
