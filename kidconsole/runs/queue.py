"""The queue of a runs root: runs launched with ``--gpus auto`` wait there, in state ``queued``,
until the GPUs (or, without GPUs, the CPU slots) they need are free.

A queued run's own status is the truth: every run directory of the runs root whose state
is ``queued`` waits. The queue file in the runs root (``queue.json``) holds only their
order (and the limits): a queued run it does not list (its file removed, or written by a
launch that died) joins the end of the order, oldest ``queued_at`` first, at the next
pass. It is changed only under an exclusive ``flock`` on ``.queue.lock``: it survives the
console and the terminal, and two launchers racing each other take turns. There is no
daemon. Whoever changes the queue or may have freed a slot *passes over* it under the lock
(``pump``): a launcher after queueing, a run's supervisor after its run ended, ``run ls``,
``run queue``, a cancel or a move. A pass starts queued runs first to last while the first
one's need is met (strict order: a big run at the head is not overtaken by small ones), and
writes each remaining run's place and what it waits for.

A run holds its GPUs (or CPU slot) until it has ended: while no final state is written and any
process of it lives, its supervisor or not (a trainer orphaned by a killed supervisor still
trains on them). A GPU is free when no run of
this runs root holds it and NVML shows less than ``idle_memory_mib`` used on it (a process
outside kidconsole counts as busy). Without GPUs the CPU takes ``cpu_slots`` runs at once.
A resumed run of the queue waits in it again (``requeue``): two runs never share a slot.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from kidconsole import rundir
from kidconsole.bounded import read_capped
from kidconsole.errors import KidconsoleError
from kidconsole.runs import liveness
from kidconsole.runs.system import GpuSample, sample_gpus

DEFAULT_CPU_SLOTS = 1
DEFAULT_IDLE_MEMORY_MIB = 1024
_MIB = 1 << 20


@dataclass
class Slots:
    """What a pass can hand out: free GPU indices, or free CPU slots when there are no GPUs."""
    gpus: list[int] | None   # None: this machine has no GPU, the CPU slots count
    cpu_free: int
    total: int               # GPUs, or CPU slots
    held: int                # by live runs of this runs root
    busy: int                # GPUs in use outside kidconsole (NVML memory)

    def need(self, k: int) -> int:
        return k if self.gpus is not None else 1

    def fits(self, k: int) -> bool:
        return len(self.gpus) >= k if self.gpus is not None else self.cpu_free >= 1

    def take(self, k: int) -> list[int]:
        if self.gpus is None:
            self.cpu_free -= 1
            return []
        taken, self.gpus = self.gpus[:k], self.gpus[k:]
        return taken

    def describe(self, k: int) -> str:
        if self.gpus is None:
            return f"a CPU slot ({self.cpu_free} of {self.total} free)"
        outside = f", {self.busy} busy outside kidconsole" if self.busy else ""
        return f"{k} GPU{'s' if k > 1 else ''} ({len(self.gpus)} of {self.total} free: {self.held} held by runs{outside})"


# ---- the file ------------------------------------------------------------------------------------

def queue_path(root: str | Path) -> Path:
    return Path(root) / rundir.QUEUE


def read_queue(root: str | Path) -> dict:
    """queue.json with its defaults filled; a missing file is an empty order (the queued runs themselves
    are found by ``waiting_runs``). A file that cannot be used is an error naming it: dropping it would lose
    the order of every waiting run."""
    path = queue_path(root)
    try:
        raw = json.loads(read_capped(path, 16 << 20))  # a queue of thousands of runs is a few hundred kB
    except FileNotFoundError:
        raw = {}
    except (OSError, ValueError) as e:
        raise KidconsoleError(f"{path}: unreadable ({e}): fix or remove it (the queued runs keep their "
                              f"directories and their place is rebuilt from their statuses)") from None
    why = rundir.QueueFile.problem(raw) if isinstance(raw, dict) else "not a JSON object"
    if why:
        raise KidconsoleError(f"{path}: {why}: fix or remove it (the queued runs keep their directories and "
                              f"their place is rebuilt from their statuses)")
    return {"order": list(raw.get("order") or []),
            "cpu_slots": raw.get("cpu_slots") or DEFAULT_CPU_SLOTS,
            "idle_memory_mib": raw.get("idle_memory_mib") or DEFAULT_IDLE_MEMORY_MIB}


def waiting_runs(root: str | Path, order: Sequence[str] = ()) -> list[str]:
    """The runs of ``root`` whose status says ``queued``, in queue order: those ``order`` lists first, as it
    lists them, then the others (a lost or stale queue file) by the time they were queued."""
    root = Path(root)
    queued: dict[str, float] = {}
    try:
        entries = [e for e in os.scandir(root) if not e.name.startswith(".") and e.is_dir()]
    except OSError:
        entries = []
    for e in entries:
        status = rundir.read_status_record(e.path)
        if status.state == rundir.QUEUED:
            queued[e.name] = status.queued_at or 0.0
    listed = [n for n in dict.fromkeys(order) if n in queued]
    return listed + sorted((n for n in queued if n not in listed), key=lambda n: (queued[n], n))


@contextmanager
def locked_queue(root: str | Path) -> Iterator[dict]:
    """The queue, held under the runs root's lock; written back when the block ends without an error."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / rundir.QUEUE_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            q = read_queue(root)
            yield q
            text = json.dumps(rundir.QueueFile(**q).to_dict(), indent=1)
            rundir.atomic_write_text(queue_path(root), text)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# ---- slots ---------------------------------------------------------------------------------------

def _holds(run_dir: Path, status: rundir.Status) -> bool:
    """A run holds its GPUs (or CPU slot) until it has ended: while no final state is written and any process
    of it lives, its supervisor or not (a trainer whose supervisor was killed trains on). A supervisor passing
    over the queue as it exits has written its run's end already."""
    if status.state == rundir.QUEUED or status.state in rundir.FINAL_STATES:
        return False
    return bool(liveness.run_processes(run_dir, status))


def free_slots(root: Path, cpu_slots: int, idle_memory_mib: int, gpus: Sequence[GpuSample] | None = None) -> Slots:
    from kidconsole.runs.discover import find_runs

    held_gpus: set[int] = set()
    cpu_held = 0
    for run in find_runs([root], max_depth=1):
        status = rundir.read_status_record(run)
        if _holds(run, status):
            if status.gpus:
                held_gpus.update(status.gpus)
            else:
                cpu_held += 1
    gpus = sample_gpus() if gpus is None else gpus
    if not gpus:
        return Slots(None, max(0, cpu_slots - cpu_held), cpu_slots, cpu_held, 0)
    busy = [g.index for g in gpus if g.index not in held_gpus
            and (g.mem_used is None or g.mem_used >= idle_memory_mib * _MIB)]
    free = [g.index for g in gpus if g.index not in held_gpus and g.index not in busy]
    return Slots(free, 0, len(gpus), len(held_gpus), len(busy))


# ---- passes --------------------------------------------------------------------------------------

def _pass(root: Path, q: dict) -> list[Path]:
    """Start what fits, first to last; write the others' places. Runs under the lock."""
    from kidconsole.runs.launch import start_run

    waiting = waiting_runs(root, q["order"])  # a cancelled, removed or started run leaves; a lost one rejoins
    slots = free_slots(root, q["cpu_slots"], q["idle_memory_mib"])
    started: list[Path] = []
    while waiting:
        run_dir = root / waiting[0]
        k = rundir.read_status_record(run_dir).gpus_per_run or 1
        if not slots.fits(k):
            break
        waiting.pop(0)
        try:
            start_run(run_dir, slots.take(k))
        except OSError as e:
            rundir.write_end(run_dir, rundir.FAILED, f"the queue could not start it: {e}",
                             error=f"the queue could not start it: {e}", queue_position=None, waiting_for=None)
            continue
        started.append(run_dir)
    for i, name in enumerate(waiting):
        k = rundir.read_status_record(root / name).gpus_per_run or 1
        why = slots.describe(k) if i == 0 else f"its turn ({i} ahead), then {slots.describe(k)}"
        rundir.update_status(root / name, queue_position=i + 1, waiting_for=why)
    q["order"] = waiting
    return started


def pump(root: str | Path) -> list[Path]:
    """One pass over the runs root's queue (nothing when no run of it is queued); returns the runs it started."""
    root = Path(root).resolve()
    if not queue_path(root).exists() and not waiting_runs(root):
        return []
    with locked_queue(root) as q:
        return _pass(root, q)


def enqueue(run_dirs: Sequence[Path], root: str | Path) -> list[Path]:
    """Put created runs (state ``queued``) at the end of the queue and pass over it; returns the runs started."""
    root = Path(root).resolve()
    with locked_queue(root) as q:
        q["order"] += [Path(d).name for d in run_dirs]
        return _pass(root, q)


def requeue(run_dir: Path, **status) -> int:
    """A run of the queue that is to run again (a resume) waits for a slot at the end of the queue, as a new
    run would: ``status`` (its resume facts) is written with ``queued``. Returns its place (0: started at once)."""
    run_dir = Path(run_dir).resolve()
    with locked_queue(run_dir.parent) as q:
        rundir.update_status(run_dir, state=rundir.QUEUED, queued_at=round(time.time(), 3), **status)
        q["order"] = [n for n in q["order"] if n != run_dir.name] + [run_dir.name]
        _pass(run_dir.parent, q)
    return rundir.read_status_record(run_dir).queue_position or 0


def cancel(run_dir: str | Path) -> str:
    """Take a queued run out of its queue; it ends ``stopped`` without having run. Returns the state."""
    run_dir = Path(run_dir).resolve()
    with locked_queue(run_dir.parent) as q:
        if rundir.read_status_record(run_dir).state != rundir.QUEUED:
            raise KidconsoleError(f"{run_dir}: not queued (it may have just started): use `kidconsole run stop`")
        q["order"] = [n for n in q["order"] if n != run_dir.name]
        rundir.write_end(run_dir, rundir.STOPPED, "cancelled while queued", queue_position=None, waiting_for=None)
        _pass(run_dir.parent, q)
    return rundir.STOPPED


def move(run_dir: str | Path, position: int) -> int:
    """Put a queued run at ``position`` (1-based; past the end: last); returns its place after the pass."""
    run_dir = Path(run_dir).resolve()
    with locked_queue(run_dir.parent) as q:
        order = waiting_runs(run_dir.parent, q["order"])
        if run_dir.name not in order:
            raise KidconsoleError(f"{run_dir}: not in the queue of {run_dir.parent}")
        if position < 1:
            raise KidconsoleError(f"position {position}: places start at 1")
        order = [n for n in order if n != run_dir.name]
        order.insert(position - 1, run_dir.name)
        q["order"] = order
        _pass(run_dir.parent, q)
    return rundir.read_status_record(run_dir).queue_position or 0


def set_limits(root: str | Path, *, cpu_slots: int | None = None, idle_memory_mib: int | None = None) -> dict:
    """Change the CPU slots or the idle threshold, then pass over the queue (more slots may start runs)."""
    root = Path(root).resolve()
    for flag, v in (("cpu slots", cpu_slots), ("idle memory MiB", idle_memory_mib)):
        if v is not None and v < 1:
            raise KidconsoleError(f"{flag} {v}: must be at least 1")
    with locked_queue(root) as q:
        q["cpu_slots"] = cpu_slots or q["cpu_slots"]
        q["idle_memory_mib"] = idle_memory_mib or q["idle_memory_mib"]
        _pass(root, q)
        return dict(q)


def queued_runs(root: str | Path) -> list[Path]:
    """The queue's runs, first to start first (a read without the lock: a snapshot)."""
    root = Path(root).resolve()
    return [root / n for n in waiting_runs(root, read_queue(root)["order"])]


def launch_queued(points: Sequence[tuple[str | Path, Sequence[str], str | None, dict]], *, gpus_per_run: int = 1,
                  runs_root: str | Path = "runs", trainer_module: str = rundir.TRAINER) -> list[Path]:
    """Create one queued run per (config, overrides, name, extra status keys), every config validated
    before any directory is made, and queue them in that order; returns their run directories. Should the
    queue refuse them (a broken queue file), no run is left behind: a queued run nobody lists would wait
    for ever, or start unasked once the file is fixed."""
    from kidconsole.config import load_config
    from kidconsole.runs.launch import create_run

    if gpus_per_run < 1:
        raise KidconsoleError(f"--gpus-per-run {gpus_per_run}: must be at least 1")
    gpus = sample_gpus()
    if gpus and gpus_per_run > len(gpus):
        raise KidconsoleError(f"--gpus-per-run {gpus_per_run}: this machine has {len(gpus)} GPU(s)")
    for config, overrides, _, _ in points:
        load_config(config, overrides)  # a bad point fails here, before anything is queued
    read_queue(runs_root)  # a broken queue file fails here, before any directory is made
    now = round(time.time(), 3)
    run_dirs: list[Path] = []
    try:
        for config, overrides, name, extra in points:
            run_dirs.append(create_run(config, name=name, overrides=overrides, runs_root=runs_root,
                                       trainer_module=trainer_module, kind=rundir.QUEUED_KIND, state=rundir.QUEUED,
                                       queued_at=now, gpus_per_run=gpus_per_run, **extra))
        enqueue(run_dirs, runs_root)
    except BaseException:
        for run_dir in run_dirs:  # only those still waiting: a pass may have started some
            if rundir.read_status_record(run_dir).state == rundir.QUEUED:
                shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return run_dirs
