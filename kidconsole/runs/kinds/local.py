"""A run on this machine: one supervised process tree (the supervisor, ``accelerate launch``, the ranks).

Started detached under its supervisor (``supervise.start_supervised``); stopped by SIGTERM to every process
of the run (whether or not its supervisor lives), SIGKILL for what is left after the timeout; resumed in
the same directory from its newest complete checkpoint. Its end frees a slot of its runs root's queue.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any, Sequence

import psutil

from kidconsole import rundir
from kidconsole.errors import KidconsoleError
from kidconsole.rundir.records import Status
from kidconsole.runs import liveness
from kidconsole.runs.kinds.base import RunKind, StopReport
from kidconsole.runs.state import written_final

START_WAIT = 10.0  # seconds a stop waits for a starting run's first process to be recorded


def _terminate(procs: list[psutil.Process], pgid: Any) -> list[int]:
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


def _group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _with_its_process(run_dir: Path, status: Status) -> Status:
    """A run starting on this host records its supervisor's pid a moment after it says ``starting``
    (supervise.start_supervised): a stop in that moment waits up to ``START_WAIT`` s for it."""
    if status.state != rundir.STARTING or status.pid is not None or not liveness.on_this_host(status):
        return status
    deadline = time.monotonic() + START_WAIT
    while time.monotonic() < deadline:
        time.sleep(0.1)
        status = rundir.read_status_record(run_dir)
        if status.pid is not None or status.state != rundir.STARTING:
            return status
    raise KidconsoleError(f"{run_dir}: {rundir.STARTING}, and no process recorded after {START_WAIT:g} s "
                          f"(its start may have been killed): see {rundir.STDOUT} and try the stop again")


def stop_processes(run_dir: Path, status: Status, *, timeout: float) -> StopReport:
    """SIGTERM every process of the run, wait up to ``timeout`` s for the trainer's stop checkpoint and every
    process to end, SIGKILL what is left; the run's end is written here when no process of it did."""
    from kidconsole.runs.life import read_state

    status = _with_its_process(run_dir, status)
    if not liveness.local(status):
        if status.state in rundir.LIVE_STATES:
            raise KidconsoleError(f"{run_dir}: no process of this host recorded (host {status.host}, "
                                  f"pid {status.pid}): stop it where it runs")
        return StopReport(read_state(run_dir))
    procs = liveness.run_processes(run_dir, status, strict=True)  # only processes proven the run's are signalled
    if not procs:
        if liveness.run_processes(run_dir, status):
            raise KidconsoleError(f"{run_dir}: pid {status.pid} lives but is not proven the run's ({rundir.STATUS} "
                                  f"records no start time of it and its command line does not name the run "
                                  f"directory): not signalled; if it is the run, stop it with `kill {status.pid}`")
        return StopReport(read_state(run_dir))
    t0 = time.monotonic()  # a duration: the wall clock can step
    rundir.update_status(run_dir, stop_requested_at=round(time.time(), 3))
    pgid = status.pgid or status.pid
    # the group only while a process proven the run's is in it: the kernel reuses a group's id only once
    # none of its members is left, so then it is the run's group and no stranger's
    terminated = _terminate(procs, pgid if any(_group(p.pid) == pgid for p in procs) else None)
    _, left = psutil.wait_procs(procs, timeout=timeout)
    left += [p for p in liveness.run_processes(run_dir, status, strict=True) if p not in left]  # started meanwhile
    if left:
        for proc in left:
            try:
                proc.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(left, timeout=10)
        rundir.update_status(run_dir, killed_pids=sorted(p.pid for p in left))
    after = rundir.read_status_record(run_dir)
    if not written_final(after):  # nobody left to write the ending (the supervisor was gone too): write it
        reason = (f"SIGKILLed {len(left)} process(es) still running {timeout:g} s after SIGTERM" if left
                  else "stopped by SIGTERM; no process wrote the ending")
        rundir.write_end(run_dir, rundir.STOPPED, reason, step=after.step, error=reason if left else None)
    return StopReport(read_state(run_dir), terminated, sorted(p.pid for p in left), timeout, time.monotonic() - t0)


def resume_checks(run_dir: Path, status: Status, mine: Status, *, machine_rank: int,
                  trainer_modules: Sequence[str]) -> tuple[str, Path]:
    """What a resume of a run of ours needs, checked: (its trainer module, its newest complete checkpoint).
    ``mine``: this machine's status (status.json on machine 0)."""
    from kidconsole.runs.life import read_state

    # the one rule first: a live, stalled or queued run is not resumed; then any process of it still here
    # (a run that wrote its ending may have ranks still exiting)
    state = read_state(run_dir) if not machine_rank else None
    if state == rundir.QUEUED:
        raise KidconsoleError(f"{run_dir}: queued: it starts when its slot is free (`kidconsole run queue ls`)")
    if state in rundir.STOPPABLE_STATES or liveness.run_processes(run_dir, mine):
        raise KidconsoleError(f"{run_dir}: still running (pid {mine.pid}): stop it first")
    if status.state == rundir.FINISHED:
        raise KidconsoleError(f"{run_dir}: finished: nothing to resume")
    if not (run_dir / rundir.CONFIG).is_file():
        raise KidconsoleError(f"{run_dir / rundir.CONFIG}: missing: cannot resume")
    ckpt = rundir.newest_checkpoint(run_dir / rundir.CHECKPOINTS)
    if ckpt is None:
        unfinished = ", ".join(p.name for p in rundir.unfinished_writes(run_dir / rundir.CHECKPOINTS))
        raise KidconsoleError(f"{run_dir / rundir.CHECKPOINTS}: no complete checkpoint to resume from"
                              + (f" ({unfinished}: a write that never finished)" if unfinished else ""))
    module = status.trainer_module or rundir.TRAINER
    if module not in trainer_modules:
        raise KidconsoleError(f"{run_dir / rundir.STATUS}: trainer_module {module!r} is not one of the project's "
                              f"trainer entry points ({', '.join(trainer_modules)}): not starting it")
    return module, ckpt


def resumed_fields(status: Status, ckpt: Path) -> dict:
    """The status of a run about to continue from ``ckpt``: its last ending cleared, the resume counted."""
    return dict(exit_code=None, error=None, ended_at=None, stop_requested_at=None, resumed_from=ckpt.name,
                resumes=(status.resumes or 0) + 1, resumed_at=round(time.time(), 3))


class LocalKind(RunKind):
    """One machine's supervised process tree (``python -m kidconsole.runs.supervise``)."""
    name = rundir.LOCAL

    def claims(self, run_dir: Path, status: Status) -> bool:
        return status.kind in (None, self.name)  # the last resort of the registry: a run of ours

    def start(self, run_dir: Path, *, gpus: Sequence[int] = (), **how: Any) -> int:
        """Start a created (or dequeued) run on ``gpus`` ([]: the CPU); returns the supervisor's pid."""
        from kidconsole.runs.launch import start_run

        return start_run(run_dir, gpus)

    def stop(self, run_dir: Path, status: Status, *, timeout: float) -> StopReport:
        return stop_processes(run_dir, status, timeout=timeout)

    def resume(self, run_dir: Path, status: Status, *, machine_rank: int = 0,
               trainer_modules: tuple[str, ...] = rundir.TRAINER_MODULES) -> str:
        from kidconsole.runs.launch import build_command, start_detached

        if machine_rank:
            raise KidconsoleError(f"{run_dir}: --machine-rank {machine_rank}: the run has 1 machine(s)")
        module, ckpt = resume_checks(run_dir, status, status, machine_rank=0, trainer_modules=trainer_modules)
        gpus = [int(g) for g in status.gpus or []]
        command = build_command(run_dir, gpus=gpus, trainer_module=module,
                                mixed_precision=status.mixed_precision or "no", resume=True)
        rundir.update_status(run_dir, state=rundir.STARTING, command=command, **resumed_fields(status, ckpt))
        pid = start_detached(run_dir, command, gpus)
        return f"resumed from {ckpt.name}: pid {pid}"

    def after_end(self, run_dir: Path) -> None:
        """Its slot is free: the queue of its runs root starts what waits for it (docs/runs.md)."""
        from kidconsole.runs.queue import pump

        pump(run_dir.parent)
