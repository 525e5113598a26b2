"""A run's end: its final state in status.json and its ``end`` event in events.jsonl, written by one function.

Whoever ends a run calls ``write_end``: the trainer's session (it finished, stopped or failed), the
supervisor (the trainer could not: a crash, a kill), ``run stop`` (no process was left to write it),
the queue (a queued run cancelled, or one it could not start), the Slurm kind (a job cancelled). The two
writes are made each on its own: on a full disk the event may fail where the small status still fits, and
the status is what every reader trusts first.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from kidconsole.rundir.files import EventWriter, update_status
from kidconsole.rundir.names import EV_END, EVENTS, FINAL_STATES, STATUS


def write_end(run_dir: str | Path, state: str, reason: str, *, exit_code: int | None = None,
              step: int | None = None, error: str | None = None, file: str = STATUS,
              emit: Callable[..., None] | None = None, **status: Any) -> list[OSError]:
    """End the run ``state`` (finished, stopped, failed) for ``reason``: the ``end`` event and status.json's
    state, ``ended_at``, ``exit_code``, ``error`` (null unless given), ``step`` (when given) and ``status``.
    ``file``: a machine's own status file (a run over several machines): its end has no event, the run's
    events being machine 0's. ``emit``: the writer's own event function (the trainer's, under its lock).
    Returns the writes that failed (both are tried)."""
    if state not in FINAL_STATES:
        raise ValueError(f"{state!r} is not a final state ({', '.join(FINAL_STATES)})")
    run_dir = Path(run_dir)
    failed: list[OSError] = []
    if file == STATUS:
        try:
            if emit is not None:
                emit(EV_END, step=step, state=state, exit_code=exit_code, reason=reason)
            else:
                writer = EventWriter(run_dir / EVENTS)
                try:
                    writer.emit(EV_END, step=step, state=state, exit_code=exit_code, reason=reason)
                finally:
                    writer.close()
        except OSError as e:
            failed.append(e)
    fields = {"state": state, "exit_code": exit_code, "error": error, "ended_at": round(time.time(), 3), **status}
    if step is not None:
        fields["step"] = step
    try:
        update_status(run_dir, file=file, **fields)
    except OSError as e:
        failed.append(e)
    return failed
