"""The interface every kind of run implements: ``RunKind``.

A kind says how a run of its sort is started, stopped and resumed, and what its state rests on beyond the
run's files (``signs``: its processes, its scheduler). The state itself is decided by the one rule
(``kidconsole.runs.state.decide``) from the kind's signs; no kind decides a state of its own.

- ``name``: as status.json's ``kind`` records it (``rundir.RUN_KINDS`` for ours).
- ``claims(run_dir, status)``: whether a run directory is of this kind (its status names it, or, for runs
  written before status.json had a ``kind``, its keys tell); ``marks(folder)``: whether a folder with no
  status.json of ours is a run of this kind all the same (a run written by another tool).
- ``reader(run_dir)``: what reads its files live (``RunReader`` for ours; a read-only kind brings its own
  with the same methods, so the console, ``run ls`` and reports take it like any run).
- ``signs(run_dir, status, last_sign, now)``: ``state.Signs`` (whether its processes live, its scheduler's
  view as last sampled); never a subprocess, never a wait. ``where(status)``: where it runs, for people.
  A kind whose signs rest on something outside (a scheduler) has ``sample(statuses)``, which the watcher
  calls on its schedule (``life.sample``).
- ``start(run_dir, **how)``: start a created run (each kind takes its own ``how``: GPUs, Slurm options,
  machines, a job's command); ``stop(run_dir, status, timeout)`` -> ``StopReport``;
  ``resume(run_dir, status, machine_rank, trainer_modules)`` -> what was done, for people;
  ``after_end(run_dir)``: what its end frees (a slot of its runs root's queue).

Read-only kinds (``ReadOnlyKind``: runs written by other tools, read where they lie) have no start, stop or
resume: each refuses with a message that says so; their reader gives the state from their own files.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from kidconsole import rundir
from kidconsole.errors import KidconsoleError
from kidconsole.rundir.records import Status
from kidconsole.runs import liveness
from kidconsole.runs import state as rule
from kidconsole.runs.state import STALL_AFTER, Signs, written_final


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


class RunKind:
    """A kind of run (see the module's docstring). The defaults are a run of ours whose processes run here."""
    name: ClassVar[str] = ""
    read_only: ClassVar[bool] = False
    scheduled: ClassVar[bool] = False  # a scheduler's view can overrule a written state (a requeued job: pending)

    def claims(self, run_dir: Path, status: Status) -> bool:
        return status.kind == self.name

    def marks(self, folder: Path) -> bool:
        return False

    def reader(self, run_dir: Path) -> Any:
        from kidconsole.runs.reader import RunReader

        return RunReader(run_dir)

    def signs(self, run_dir: Path, status: Status, *, last_sign: float | None, now: float | None) -> Signs:
        return Signs(alive=liveness.run_alive(run_dir, status, last_sign=last_sign, now=now))

    def state(self, run_dir: Path, status: Status, *, end_event: dict | None = None, last_sign: float | None = None,
              last_progress: float | None = None, now: float | None = None,
              stall_after: float = STALL_AFTER) -> str:
        """The one rule (``state.decide``) on this kind's signs. A run that wrote its ending needs no look at
        its processes."""
        if written_final(status, end_event) and not self.scheduled:
            signs = Signs()
        else:
            signs = self.signs(run_dir, status, last_sign=last_sign, now=now)
        return rule.decide(status, signs=signs, end_event=end_event, last_sign=last_sign, last_progress=last_progress,
                      now=now, stall_after=stall_after)

    def where(self, status: Status) -> str | None:
        """Where the run runs, for people: its host when not this one (None: here)."""
        return status.host if status.host and status.host != socket.gethostname() else None

    def start(self, run_dir: Path, **how: Any) -> Any:
        raise NotImplementedError

    def stop(self, run_dir: Path, status: Status, *, timeout: float) -> StopReport:
        raise NotImplementedError

    def resume(self, run_dir: Path, status: Status, *, machine_rank: int = 0,
               trainer_modules: tuple[str, ...] = rundir.TRAINER_MODULES) -> str:
        raise NotImplementedError

    def after_end(self, run_dir: Path) -> None:
        """Nothing is freed by default."""


class ReadOnlyKind(RunKind):
    """A run written by another tool, read where it lies: the console and ``run ls`` show it like ours;
    start, stop and resume are refused (``tool`` names the tool in the message). A subclass gives ``name``,
    ``tool``, ``marks`` and ``reader``; its reader's ``status`` is a ``Status`` record made from the tool's own
    files (``state`` among the written states, ``updated_at`` its files' newest change) and its
    ``end_event`` None, so the one rule decides its state as it does ours (``signs``: nothing more is known)."""
    read_only: ClassVar[bool] = True
    tool: ClassVar[str] = "another tool"

    def claims(self, run_dir: Path, status: Status) -> bool:
        """Its own files, and no status.json of ours (a run of ours written into such a folder is ours)."""
        return status.kind in (None, self.name) and not (run_dir / rundir.STATUS).is_file() and self.marks(run_dir)

    def signs(self, run_dir: Path, status: Status, *, last_sign: float | None, now: float | None) -> Signs:
        return Signs()

    def refusal(self, run_dir: Path, what: str) -> str:
        """Why kidconsole does not ``what`` (start, stop, resume, average, export) such a run, for people."""
        told = f"; {what} it with {self.tool}" if what in ("start", "stop", "resume") else ""
        return (f"{run_dir}: a run written by {self.tool} ({self.name}): kidconsole reads it where it lies and "
                f"cannot {what} it{told}")

    def _refuse(self, run_dir: Path, what: str) -> KidconsoleError:
        return KidconsoleError(self.refusal(run_dir, what))

    def start(self, run_dir: Path, **how: Any) -> Any:
        raise self._refuse(run_dir, "start")

    def stop(self, run_dir: Path, status: Status, *, timeout: float) -> StopReport:
        raise self._refuse(run_dir, "stop")

    def resume(self, run_dir: Path, status: Status, *, machine_rank: int = 0,
               trainer_modules: tuple[str, ...] = rundir.TRAINER_MODULES) -> str:
        raise self._refuse(run_dir, "resume")
