"""Stop and resume runs."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import psutil

from kidconsole import rundir
from kidconsole.errors import KidconsoleError
from kidconsole.runs.state import process_alive
from kidconsole.runs.system import run_pids


def run_processes(status: dict) -> list[psutil.Process]:
    """The run's live processes: the supervisor's tree and every process still in its session
    (ranks can leave the group but keep the session), never one started before the run."""
    pid, sid = status.get("pid"), status.get("sid") or status.get("pid")
    created = status.get("create_time")
    if not isinstance(pid, int):
        return []
    if process_alive(status) is False and psutil.pid_exists(pid):
        # the pid was reused, so the kernel had freed it: no process of the old session is left
        return []
    out = []
    for p in run_pids(pid, sid if isinstance(sid, int) else None):
        try:
            proc = psutil.Process(p)
            if isinstance(created, (int, float)) and proc.create_time() < created - 0.05:
                continue  # an older process holding a reused pid is not the run's
            if proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.Error:
            continue
    return out


def _current_state(run_dir: Path) -> str:
    from kidconsole.runs.reader import RunReader

    return RunReader(run_dir).state()


def stop_run(run_dir: str | Path, *, timeout: float = 120) -> str:
    """SIGTERM the run's process group, wait up to ``timeout`` s for the trainer's checkpoint and
    every process of the run to end, SIGKILL what is left; returns the final state."""
    run_dir = Path(run_dir)
    status = rundir.read_status(run_dir)
    if not status:
        raise KidconsoleError(f"{run_dir / rundir.STATUS}: missing or unreadable: not a run directory")
    if status.get("slurm_job_id"):  # Slurm signals every node of the job
        from kidconsole.runs.slurm import stop_slurm

        return stop_slurm(run_dir, timeout=timeout)
    alive = process_alive(status)
    if alive is None and status.get("state") in rundir.LIVE_STATES:
        raise KidconsoleError(f"{run_dir}: no process of this host recorded (host {status.get('host')}, "
                              f"pid {status.get('pid')}): stop it where it runs")
    procs = run_processes(status) if alive is not None else []
    if not procs:
        return _current_state(run_dir)
    rundir.update_status(run_dir, stop_requested_at=round(time.time(), 3))
    pgid = status.get("pgid") or status["pid"]
    if alive:
        try:
            os.killpg(pgid, signal.SIGTERM)  # the whole group: accelerate's launcher forwards nothing
        except ProcessLookupError:
            pass
    for proc in procs:  # processes that left the group
        try:
            if proc.pid != pgid and os.getpgid(proc.pid) != pgid:
                proc.terminate()
        except (psutil.Error, OSError):
            pass
    _, left = psutil.wait_procs(procs, timeout=timeout)
    left += [p for p in run_processes(status) if p not in left]  # started while stopping
    if left:
        for proc in left:
            try:
                proc.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(left, timeout=10)
        rundir.update_status(run_dir, killed_pids=sorted(p.pid for p in left))
        if rundir.read_status(run_dir).get("state") not in rundir.FINAL_STATES:
            rundir.update_status(run_dir, state=rundir.STOPPED, ended_at=round(time.time(), 3),
                                 error=f"killed {len(left)} process(es) still running {timeout:g} s after SIGTERM")
    return _current_state(run_dir)


def resume_run(run_dir: str | Path, machine_rank: int = 0) -> Path:
    """Relaunch a run that is not running from its newest complete checkpoint, in the same
    directory: the trainer appends to the same events and log, so history continues.
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
    if process_alive(mine) or run_processes(mine):
        raise KidconsoleError(f"{run_dir}: still running (pid {mine.get('pid')}): stop it first")
    if status.get("state") == rundir.FINISHED:
        raise KidconsoleError(f"{run_dir}: finished: nothing to resume")
    if not (run_dir / rundir.CONFIG).is_file():
        raise KidconsoleError(f"{run_dir / rundir.CONFIG}: missing: cannot resume")
    ckpt = rundir.newest_checkpoint(run_dir / rundir.CHECKPOINTS)
    if ckpt is None:
        unfinished = ", ".join(p.name for p in rundir.unfinished_writes(run_dir / rundir.CHECKPOINTS))
        raise KidconsoleError(f"{run_dir / rundir.CHECKPOINTS}: no complete checkpoint to resume from"
                              + (f" ({unfinished}: a write that never finished)" if unfinished else ""))
    gpus = [int(g) for g in mine.get("gpus") or []]
    machines = None
    if (status.get("machines") or 1) > 1:
        machines = Machines(status["machines"], machine_rank, status.get("main_addr") or "127.0.0.1",
                            status.get("main_port") or 29500, max(1, len(gpus)))
    command = build_command(run_dir, gpus=gpus, trainer_module=status.get("trainer_module") or rundir.TRAINER,
                            mixed_precision=status.get("mixed_precision") or "no", resume=True, machines=machines)
    if machine_rank:
        rundir.update_status(run_dir, file=status_file(machine_rank), state=rundir.STARTING, command=command,
                             exit_code=None, ended_at=None, host=socket.gethostname())
    else:
        rundir.update_status(run_dir, state=rundir.STARTING, command=command, exit_code=None, error=None,
                             ended_at=None, stop_requested_at=None, resumed_from=ckpt.name,
                             resumes=int(status.get("resumes") or 0) + 1, resumed_at=round(time.time(), 3))
    start_detached(run_dir, command, gpus, machine_rank)
    return run_dir
