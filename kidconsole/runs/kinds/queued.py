"""A run of its runs root's queue (``--gpus auto``, ``run sweep``): a local run that waits for its GPUs or a
CPU slot before it starts, and again before it resumes.

Started by the queue (``queue.enqueue``: a pass starts it once its slots are free); stopped while it waits
by taking it out of the queue (it ends ``stopped``, never started), once started as any local run; resumed
through the queue (``queue.requeue``), so that a resume never takes a slot another run holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from kidconsole import rundir
from kidconsole.errors import KidconsoleError
from kidconsole.rundir.records import Status
from kidconsole.runs.kinds.base import StopReport
from kidconsole.runs.kinds.local import LocalKind, resume_checks, resumed_fields


class QueuedKind(LocalKind):
    name = rundir.QUEUED_KIND

    def claims(self, run_dir: Path, status: Status) -> bool:
        return status.kind == self.name or (status.kind is None and status.queued_at is not None)

    def start(self, run_dir: Path, *, run_dirs: Sequence[Path] = (), **how: Any) -> list[Path]:
        """Queue ``run_dir`` (and ``run_dirs``, created as queued, in that order); returns those started."""
        from kidconsole.runs.queue import enqueue

        return enqueue([run_dir, *run_dirs], run_dir.parent)

    def stop(self, run_dir: Path, status: Status, *, timeout: float) -> StopReport:
        from kidconsole.runs.queue import cancel

        if status.state == rundir.QUEUED:  # no process yet: stopping it is taking it out of the queue
            return StopReport(cancel(run_dir), note="taken out of the queue before it started")
        return super().stop(run_dir, status, timeout=timeout)

    def resume(self, run_dir: Path, status: Status, *, machine_rank: int = 0,
               trainer_modules: tuple[str, ...] = rundir.TRAINER_MODULES) -> str:
        from kidconsole.runs.queue import requeue

        if machine_rank:
            raise KidconsoleError(f"{run_dir}: --machine-rank {machine_rank}: the run has 1 machine(s)")
        _, ckpt = resume_checks(run_dir, status, status, machine_rank=0, trainer_modules=trainer_modules)
        place = requeue(run_dir, **resumed_fields(status, ckpt))
        if not place:
            return f"resumed from {ckpt.name} through the queue: started at once"
        return f"queued to resume from {ckpt.name}: #{place} in the queue of {run_dir.parent}"
