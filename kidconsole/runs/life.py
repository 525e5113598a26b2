"""One owner of a run's life: start, end, state, stop and resume, for every kind of run.

- **start**: ``launch`` creates the run directory (whole or not at all) and has its kind start it; a start
  that fails leaves no run behind. Every process of a run, training or scoring, a machine's share, an
  average, an ensemble or an export, is started the one way: detached under its supervisor
  (``supervise.start_supervised``), which writes the run's end when the run could not. ``start_job`` starts
  a job (a run made without training) so.
- **end**: ``end`` (``rundir.write_end``: the contract's, since the trainers end their runs too) writes the
  final status and the ``end`` event together; nothing else writes a final state. ``after_end``: what the
  end of a run frees (a slot of its runs root's queue).
- **state**: ``state_of`` is the one function every reader calls (the console's cards, ``run ls``, the
  exports panel, ``run stop``, ``run resume``): the run's kind gives its signs, the one rule
  (``state.decide``) the state. ``read_state`` reads what it needs from the run directory first.
- **stop**, **resume**: by the run's kind (kinds/).

Kinds of run (``kinds.kind_of``): local, queued, slurm, machines, job, and read-only kinds registered by
those who read other tools' runs.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from kidconsole import rundir
from kidconsole.errors import KidconsoleError
from kidconsole.rundir.records import Status
from kidconsole.runs import kinds, liveness
from kidconsole.runs.kinds import RunKind, StopReport
from kidconsole.runs.liveness import last_sign as status_sign
from kidconsole.runs.state import STALL_AFTER

end = rundir.write_end  # the one function that writes a run's end (the trainers' session calls it too)


def kind_of(run_dir: str | Path, status: Status | None = None) -> RunKind:
    run_dir = Path(run_dir)
    return kinds.kind_of(run_dir, rundir.read_status_record(run_dir) if status is None else status)


def open_run(run_dir: str | Path) -> Any:
    """The live reader of a run's files, by its kind (``RunReader`` for ours)."""
    return kind_of(run_dir).reader(Path(run_dir))


# ---- start ---------------------------------------------------------------------------------------------

def launch(config: str | Path, kind: str, how: dict, *, name: str | None = None, overrides: Sequence[str] = (),
           runs_root: str | Path = "runs", trainer_module: str = rundir.TRAINER, machine: int | None = None,
           **status: Any) -> Path:
    """Create a run of ``kind`` from ``config`` (``status``: its first status keys) and have the kind start it
    (``how``: the kind's start arguments); returns the run directory. A start that fails removes the run it
    created: nothing is left that looks like a run but never ran (a shared directory of a run over several
    machines is left to the others)."""
    from kidconsole.runs.launch import create_run

    existed = machine is not None and bool(name) and (Path(runs_root).resolve() / name).is_dir()
    run_dir = create_run(config, name=name, overrides=overrides, runs_root=runs_root, trainer_module=trainer_module,
                         machine=machine, kind=kind, **status)
    try:
        kinds.kind_named(kind).start(run_dir, **how)
    except BaseException:
        if not existed and not rundir.read_status_record(run_dir).pid:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return run_dir


def start_job(out: Path, command: list[str], *, env: dict[str, str] | None = None, log: str = rundir.STDOUT,
              **status: Any) -> int:
    """Start a job (a run made without training: an average, an ensemble, an export) detached and
    supervised, ``out`` its run directory; returns the supervisor's pid."""
    rundir.update_status(out, name=status.pop("name", out.name), kind=rundir.JOB, state=rundir.STARTING,
                         command=command, gpus=[], started_at=round(time.time(), 3), exit_code=None, error=None,
                         ended_at=None, **status)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"} if env is None else env  # its log shows lines as they come
    return kinds.kind_named(rundir.JOB).start(out, command=command, env=env, log=log)


def follow_job(out: Path, *, log: str = rundir.STDOUT, every: float = 0.2, write=None) -> str:
    """Print what a started job writes to its log until it ends; Ctrl-C stops it (its stop request: it ends
    its run ``stopped``). Returns its state. A foreground job is a detached one followed."""
    write = write or sys.stdout.write
    path, offset = out / log, 0
    try:
        while True:
            state = read_state(out)
            offset = _print_new(path, offset, write)
            if state not in rundir.STOPPABLE_STATES:
                return state
            time.sleep(every)
    except KeyboardInterrupt:
        stop(out, timeout=60)
        _print_new(path, offset, write)
        return read_state(out)


def _print_new(path: Path, offset: int, write) -> int:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except OSError:
        return offset
    if data:
        write(data.decode("utf-8", errors="replace"))
        sys.stdout.flush()
    return offset + len(data)


# ---- end -----------------------------------------------------------------------------------------------

def after_end(run_dir: Path) -> None:
    """What the end of a run frees, by its kind; called by its supervisor as it exits. Never raises: the
    run's own ending is recorded already, and a later pass does what this one could not."""
    try:
        kind_of(run_dir).after_end(run_dir)
    except Exception as e:
        print(f"kidconsole: after the end of {run_dir.name}: {e}", flush=True)


def after_own_end(run_dir: Path) -> None:
    """``after_end`` for a run whose own process has written its end (``python -m kidconsole.runs.supervise
    --after-end RUN_DIR``, which that process starts): nothing while its supervisor lives (it does that as it
    exits); one that was killed never will, and a queued run would wait for this run's slot until the next
    pass over the queue (`run ls`, `run queue`), however long that is. The trainer's own exit follows at
    once: the slot's next run takes longer than that to load its model."""
    run_dir = Path(run_dir)
    if liveness.supervisor_alive(run_dir, rundir.read_status_record(run_dir)) is False:
        after_end(run_dir)


# ---- state ---------------------------------------------------------------------------------------------

def state_of(run_dir: str | Path, status: Status, *, end_event: dict | None = None, last_sign: float | None = None,
             last_progress: float | None = None, now: float | None = None, stall_after: float = STALL_AFTER,
             kind: RunKind | None = None) -> str:
    """The run's state: its kind's signs, the one rule. Never starts a process (a scheduler's view is the
    one last sampled: ``sample``)."""
    run_dir = Path(run_dir)
    kind = kind or kinds.kind_of(run_dir, status)
    return kind.state(run_dir, status, end_event=end_event, last_sign=last_sign, last_progress=last_progress,
                      now=now, stall_after=stall_after)


def read_state(run_dir: str | Path, *, now: float | None = None, stall_after: float = STALL_AFTER) -> str:
    """``state_of`` a run from what can be read without parsing its history: status.json, and its files'
    times as the sign of life (for the exports panel, `run stop`, `run resume`)."""
    run_dir = Path(run_dir)
    status = rundir.read_status_record(run_dir)
    return state_of(run_dir, status, last_sign=status_sign(run_dir, status), now=now, stall_after=stall_after)


def sample(runs: Sequence[tuple[Path, Status]]) -> None:
    """Take what the runs' kinds rest their state on from outside (a Slurm job's state), on the caller's
    schedule: the console's watcher each round, ``run ls`` once. ``state_of`` only reads these samples."""
    by_kind: dict[str, tuple[RunKind, list[Status]]] = {}
    for run_dir, status in runs:
        kind = kinds.kind_of(run_dir, status)
        by_kind.setdefault(kind.name, (kind, []))[1].append(status)
    for kind, statuses in by_kind.values():
        take = getattr(kind, "sample", None)
        if take is not None:
            take(statuses)


# ---- stop and resume -----------------------------------------------------------------------------------

def stop(run_dir: str | Path, *, timeout: float = 120) -> StopReport:
    """Stop a run the way its kind stops: its processes signalled (SIGTERM, then SIGKILL after ``timeout``),
    a queued run taken out of the queue, a Slurm job signalled. The report's state is ``read_state``'s after."""
    run_dir = Path(run_dir)
    status = rundir.read_status_record(run_dir)
    kind = kinds.kind_of(run_dir, status)
    if not status and not kind.read_only:
        raise KidconsoleError(f"{run_dir / rundir.STATUS}: missing or unreadable: not a run directory")
    return kind.stop(run_dir, status, timeout=timeout)


def resume(run_dir: str | Path, machine_rank: int = 0, *,
           trainer_modules: tuple[str, ...] = rundir.TRAINER_MODULES) -> str:
    """Continue a run that is not running from its newest complete checkpoint, in the same directory, the
    way its kind does (a queued run waits in the queue again, a Slurm run is a new job); returns what was
    done, for people. Only an entry point of ``trainer_modules`` is started, whatever status.json names
    (anyone who can write the run directory could name any module, run as whoever resumes)."""
    run_dir = Path(run_dir).resolve()
    status = rundir.read_status_record(run_dir)
    kind = kinds.kind_of(run_dir, status)
    if not status and not kind.read_only:
        raise KidconsoleError(f"{run_dir / rundir.STATUS}: missing or unreadable: not a run directory")
    return kind.resume(run_dir, status, machine_rank=machine_rank, trainer_modules=trainer_modules)
