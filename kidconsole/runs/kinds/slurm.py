"""A run as a Slurm job (``run launch --slurm``): Slurm places it, starts it (one machine of the run per
node) and may requeue it; the run directory is shared with the nodes.

Its state rests on its job's, as last sampled (``slurm.sample``, on the watcher's schedule): a job in
Slurm's queue is ``pending``, a job that ended under a live run ``interrupted``. Stopped with
``scancel --signal=TERM`` (the trainer checkpoints), resumed by submitting its job.sbatch again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kidconsole import rundir
from kidconsole.errors import KidconsoleError
from kidconsole.rundir.records import Status
from kidconsole.runs import liveness, slurm
from kidconsole.runs.kinds.base import RunKind, StopReport
from kidconsole.runs.state import Signs


class SlurmKind(RunKind):
    name = rundir.SLURM
    scheduled = True

    def claims(self, run_dir: Path, status: Status) -> bool:
        return status.kind == self.name or (status.kind is None and bool(status.slurm_job_id))

    def signs(self, run_dir: Path, status: Status, *, last_sign: float | None, now: float | None) -> Signs:
        _, job = slurm.sampled(status.slurm_job_id)
        return Signs(alive=liveness.run_alive(run_dir, status, last_sign=last_sign, now=now),
                     scheduler=slurm.scheduler_of(job))

    def where(self, status: Status) -> str | None:
        """Its job (state, why it waits) and nodes, as last sampled."""
        _, job = slurm.sampled(status.slurm_job_id)
        if job is not None:
            why = f" ({job.reason})" if job.waiting and job.reason not in ("", "None") else ""
            hosts = ",".join(status.slurm_hosts or []) or job.nodes
            return f"job {job.id} {job.state}{why}" + (f" on {hosts}" if hosts and not job.waiting else "")
        return f"job {status.slurm_job_id}" + (f" on {','.join(status.slurm_hosts)}" if status.slurm_hosts else "")

    @staticmethod
    def sample(statuses: list[Status]) -> None:
        """Sample the jobs of these runs now (the watcher's schedule, ``run ls``)."""
        slurm.sample([s.slurm_job_id for s in statuses if s.slurm_job_id], max_age=slurm.POLL_SECONDS)

    def start(self, run_dir: Path, *, opts: slurm.SlurmOptions | None = None, **how: Any) -> str:
        return slurm.start_job(run_dir, opts or slurm.SlurmOptions())

    def stop(self, run_dir: Path, status: Status, *, timeout: float) -> StopReport:
        from kidconsole.runs.life import read_state

        slurm.stop_slurm(run_dir, timeout=timeout)
        return StopReport(read_state(run_dir), note=f"its Slurm job {status.slurm_job_id} was signalled (a job "
                          "still waiting was cancelled)")

    def resume(self, run_dir: Path, status: Status, *, machine_rank: int = 0,
               trainer_modules: tuple[str, ...] = rundir.TRAINER_MODULES) -> str:
        if machine_rank:
            raise KidconsoleError(f"{run_dir}: a Slurm run resumes as one job: no --machine-rank")
        job = slurm.resume_slurm(run_dir)
        return f"resubmitted from {rundir.read_status_record(run_dir).resumed_from}: Slurm job {job}"

    def after_end(self, run_dir: Path) -> None:
        """The queue is the submitting server's: a node of a job starts nothing from it."""
