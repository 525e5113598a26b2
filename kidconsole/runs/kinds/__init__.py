"""The kinds of run, behind one interface (base.py: ``RunKind``): local, queued, slurm, machines, job; and
read-only kinds (``ReadOnlyKind``: runs written by other tools) registered with ``register``.

``kind_of(run_dir, status)`` is the one place that tells a run's kind: the kind status.json names, else the
first kind of the registry that claims it (a run written before status.json had a ``kind``; a read-only
run by its own files). Nothing else branches on a run's keys (``slurm_job_id``, ``queued_at`` ...).
"""

from __future__ import annotations

from pathlib import Path

from kidconsole.errors import KidconsoleError
from kidconsole.rundir.records import Status
from kidconsole.runs.kinds.base import ReadOnlyKind, RunKind, StopReport
from kidconsole.runs.kinds.job import JobKind
from kidconsole.runs.kinds.local import LocalKind
from kidconsole.runs.kinds.machines import MachinesKind
from kidconsole.runs.kinds.other_tools import HfTrainerKind, TensorBoardKind
from kidconsole.runs.kinds.queued import QueuedKind
from kidconsole.runs.kinds.slurm import SlurmKind

__all__ = ["KINDS", "HfTrainerKind", "JobKind", "LocalKind", "MachinesKind", "QueuedKind", "ReadOnlyKind", "RunKind",
           "SlurmKind", "StopReport", "TensorBoardKind", "kind_named", "kind_of", "register"]

# most specific first; LocalKind claims any run of ours, so it is last
KINDS: list[RunKind] = [SlurmKind(), MachinesKind(), QueuedKind(), JobKind(), LocalKind()]


def register(kind: RunKind) -> RunKind:
    """Add a kind (a read-only kind of another tool's runs) before the built-in ones; returns it."""
    if any(k.name == kind.name for k in KINDS):
        raise ValueError(f"a kind of run named {kind.name!r} is registered already")
    KINDS.insert(0, kind)
    return kind


# runs written by other tools (kinds/other_tools.py); a Trainer's folder is asked first: its event files
# lie below it
register(TensorBoardKind())
register(HfTrainerKind())


def kind_named(name: str) -> RunKind:
    for kind in KINDS:
        if kind.name == name:
            return kind
    raise KidconsoleError(f"no kind of run named {name!r} (known: {', '.join(k.name for k in KINDS)})")


def kind_of(run_dir: str | Path, status: Status) -> RunKind:
    """The kind of the run in ``run_dir`` whose status (possibly empty) is ``status``."""
    run_dir = Path(run_dir)
    if status.kind:
        for kind in KINDS:
            if kind.name == status.kind:
                return kind
    for kind in KINDS:
        if kind.claims(run_dir, status):
            return kind
    return KINDS[-1]


def marked(folder: Path) -> bool:
    """Whether a folder without a status.json of ours is a run of some read-only kind."""
    return any(kind.marks(folder) for kind in KINDS)
