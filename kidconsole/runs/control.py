"""Stop and resume runs; whether a run is alive is liveness.py's rule."""

from __future__ import annotations

import os
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from kidconsole import rundir
from kidconsole.errors import KidconsoleError
from kidconsole.runs import liveness
from kidconsole.runs.state import written_final


@dataclass
class StopReport:
    """What `run stop` did: the final state, the processes sent SIGTERM, those SIGKILLed after the timeout."""
    state: str
    terminated: list[int] = field(default_factory=list)
    killed: list[int] = field(default_factory=list)
    timeout: float = 0.0
    took: float = 0.0
    note: str = ""  # what was done instead of signalling processes here (a queued run, a Slurm job)

    def __str__(self) -> str:
        if self.note:
            return f"{self.state}: {self.note}"
        if not self.terminated:
            return f"{self.state}: no process of the run was left to stop"
        did = f"SIGTERM to {len(self.terminated)} process(es)"
        if self.killed:
            return (f"{self.state}: {did}; {len(self.killed)} still running after {self.timeout:g} s were SIGKILLed "
                    f"(pids {', '.join(map(str, self.killed))})")
        return f"{self.state}: {did}; all ended within {self.took:.1f} s"


def _state(run_dir: Path) -> str:
    return written_final(rundir.read_status(run_dir)) or rundir.INTERRUPTED


def _terminate(procs: list[psutil.Process], pgid) -> list[int]:
    """SIGTERM every process of the run, the group too (a child forked meanwhile): the trainer
    checkpoints and ends; accelerate's launcher forwards nothing, so each rank is signalled itself."""
    if isinstance(pgid, int) and pgid > 0:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    done = []
    for proc in procs:
        try:
            proc.terminate()
            done.append(proc.pid)
        except psutil.Error:
            pass
    return done


def stop_run(run_dir: str | Path, *, timeout: float = 120) -> StopReport:
    """SIGTERM every process of the run (whether or not its supervisor lives), wait up to ``timeout`` s
    for the trainer's stop checkpoint and every process to end, SIGKILL what is left."""
    run_dir = Path(run_dir)
    status = rundir.read_status(run_dir)
    if not status:
        raise KidconsoleError(f"{run_dir / rundir.STATUS}: missing or unreadable: not a run directory")
    if status.get("state") == rundir.QUEUED:  # no process yet: stopping it is taking it out of the queue
        from kidconsole.runs.queue import cancel

        return StopReport(cancel(run_dir), note="taken out of the queue before it started")
    if status.get("slurm_job_id"):  # Slurm signals every node of the job
        from kidconsole.runs.reader import RunReader
        from kidconsole.runs.slurm import stop_slurm

        stop_slurm(run_dir, timeout=timeout)
        return StopReport(RunReader(run_dir).state(), note=f"its Slurm job {status['slurm_job_id']} was "
                          "signalled (a job still waiting was cancelled)")
    if not liveness.local(status):
        if status.get("state") in rundir.LIVE_STATES:
            raise KidconsoleError(f"{run_dir}: no process of this host recorded (host {status.get('host')}, "
                                  f"pid {status.get('pid')}): stop it where it runs")
        return StopReport(_state(run_dir))
    procs = liveness.run_processes(status)
    if not procs:
        return StopReport(_state(run_dir))
    t0 = time.monotonic()  # a duration: the wall clock can step
    rundir.update_status(run_dir, stop_requested_at=round(time.time(), 3))
    terminated = _terminate(procs, status.get("pgid") or status["pid"])
    _, left = psutil.wait_procs(procs, timeout=timeout)
    left += [p for p in liveness.run_processes(status) if p not in left]  # started while stopping
    if left:
        for proc in left:
            try:
                proc.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(left, timeout=10)
        rundir.update_status(run_dir, killed_pids=sorted(p.pid for p in left))
    status = rundir.read_status(run_dir)
    if not written_final(status):  # nobody left to write the ending (the supervisor was gone too): write it
        reason = (f"SIGKILLed {len(left)} process(es) still running {timeout:g} s after SIGTERM" if left
                  else "stopped by SIGTERM; no process wrote the ending")
        rundir.update_status(run_dir, state=rundir.STOPPED, ended_at=round(time.time(), 3),
                             error=reason if left else None)
        writer = rundir.EventWriter(run_dir / rundir.EVENTS)
        try:
            writer.emit(rundir.EV_END, step=status.get("step"), state=rundir.STOPPED, exit_code=None, reason=reason)
        finally:
            writer.close()
    return StopReport(_state(run_dir), terminated, sorted(p.pid for p in left), timeout, time.monotonic() - t0)


def resume_run(run_dir: str | Path, machine_rank: int = 0, *,
               trainer_modules: tuple[str, ...] = rundir.TRAINER_MODULES) -> Path:
    """Relaunch a run that is not running from its newest complete checkpoint, in the same
    directory: the trainer appends to the same events and log, so history continues. Only an
    entry point of ``trainer_modules`` is started, whatever status.json names (anyone who can
    write the run directory could name any module, run as whoever resumes).
    A run over several machines resumes on each, with its ``machine_rank``."""
    from kidconsole.runs.launch import Machines, build_command, start_detached, status_file

    run_dir = Path(run_dir).resolve()
    status = rundir.read_status(run_dir)
    if not status:
        raise KidconsoleError(f"{run_dir / rundir.STATUS}: missing or unreadable: not a run directory")
    if status.get("slurm_job_id"):  # a new job, the same batch script, the trainer told to resume
        from kidconsole.runs.slurm import resume_slurm

        resume_slurm(run_dir)
        return run_dir
    mine = rundir.read_status(run_dir, file=status_file(machine_rank)) if machine_rank else status
    if machine_rank and not (isinstance(status.get("machines"), int) and 0 < machine_rank < status["machines"]):
        raise KidconsoleError(f"{run_dir}: --machine-rank {machine_rank}: the run has {status.get('machines') or 1} "
                              "machine(s)")
    # a heartbeat counts only for a run that wrote no ending (its processes are what a final state leaves),
    # and only on machine 0: the events are its ranks'
    beat = None if machine_rank or written_final(status) else liveness.last_sign(run_dir, status)
    if liveness.run_alive(mine, last_sign=beat):
        raise KidconsoleError(f"{run_dir}: still running (pid {mine.get('pid')}): stop it first")
    mixed = status.get("mixed_precision") or "no"  # one argv element; accelerate refuses any but its choices
    if status.get("state") == rundir.FINISHED:
        raise KidconsoleError(f"{run_dir}: finished: nothing to resume")
    if not (run_dir / rundir.CONFIG).is_file():
        raise KidconsoleError(f"{run_dir / rundir.CONFIG}: missing: cannot resume")
    ckpt = rundir.newest_checkpoint(run_dir / rundir.CHECKPOINTS)
    if ckpt is None:
        unfinished = ", ".join(p.name for p in rundir.unfinished_writes(run_dir / rundir.CHECKPOINTS))
        raise KidconsoleError(f"{run_dir / rundir.CHECKPOINTS}: no complete checkpoint to resume from"
                              + (f" ({unfinished}: a write that never finished)" if unfinished else ""))
    module = status.get("trainer_module") or rundir.TRAINER
    if module not in trainer_modules:
        raise KidconsoleError(f"{run_dir / rundir.STATUS}: trainer_module {module!r} is not one of the project's "
                              f"trainer entry points ({', '.join(trainer_modules)}): not starting it")
    gpus = [int(g) for g in mine.get("gpus") or []]
    machines = None
    if (status.get("machines") or 1) > 1:
        machines = Machines(status["machines"], machine_rank, status.get("main_addr") or "127.0.0.1",
                            status.get("main_port") or 29500, max(1, len(gpus)))
    command = build_command(run_dir, gpus=gpus, trainer_module=module, mixed_precision=mixed, resume=True,
                            machines=machines)
    if machine_rank:
        rundir.update_status(run_dir, file=status_file(machine_rank), state=rundir.STARTING, command=command,
                             exit_code=None, ended_at=None, host=socket.gethostname())
    else:
        rundir.update_status(run_dir, state=rundir.STARTING, command=command, exit_code=None, error=None,
                             ended_at=None, stop_requested_at=None, resumed_from=ckpt.name,
                             resumes=int(status.get("resumes") or 0) + 1, resumed_at=round(time.time(), 3))
    start_detached(run_dir, command, gpus, machine_rank)
    return run_dir
