"""Read-only kinds of run written by other tools (registered in kinds/__init__.py), read where they lie:

- ``hf``: a Hugging Face Trainer's output folder: ``trainer_state.json`` in it or in a ``checkpoint-N/``,
  or TensorBoard event files in the Trainer's default logging folder ``runs/<date>_<host>/``.
- ``tensorboard``: a folder holding TensorBoard event files (``events.out.tfevents.*``) of any writer, but
  never a run of ours's own mirror (``RUN/tensorboard``: part of that run, docs/run-directory.md).

Their state comes from the one rule (``state.decide``) on signs read from their files (docs/runs.md, Runs
written by other tools): a run is alive while a process of this user here holds one of its files open
(``holders``: psutil), unknown while its files keep changing (its writer may be on another machine that
shares the folder), and gone once neither holds for the quiet time: ``stall_after``, or for a Trainer folder
written only at its checkpoints one and a half times the gap between its two newest checkpoints.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import ClassVar

from kidconsole import rundir
from kidconsole.rundir.records import Status
from kidconsole.runs import holders
from kidconsole.runs import state as rule
from kidconsole.runs.kinds.base import ReadOnlyKind
from kidconsole.runs.state import STALL_AFTER, Signs

EVENTS_PREFIX = "events.out.tfevents."
CHECKPOINT = re.compile(r"checkpoint-\d+")
TRAINER_STATE = "trainer_state.json"
HF_LOGS = "runs"  # the Trainer's default logging_dir, below its output_dir


def _entries(folder: Path) -> list[os.DirEntry]:
    try:
        return list(os.scandir(folder))
    except OSError:
        return []


def holds_events(folder: Path) -> bool:
    """Whether ``folder`` itself holds a TensorBoard event file."""
    return any(e.name.startswith(EVENTS_PREFIX) and e.is_file() for e in _entries(folder))


class FilesKind(ReadOnlyKind):
    """A read-only kind whose signs are its files: held open here, still changing, or neither."""
    label: ClassVar[str] = ""  # shown where a run of ours shows its host or its Slurm job

    def where(self, status: Status) -> str | None:
        return self.label

    def quiet_after(self, run_dir: Path, stall_after: float) -> float:
        """Seconds without a change after which a folder no process here holds is taken as gone."""
        return stall_after

    def signs(self, run_dir: Path, status: Status, *, last_sign: float | None, now: float | None,
              stall_after: float = STALL_AFTER) -> Signs:
        """Alive while a process here holds one of its files; unknown while its files changed within
        ``stall_after`` (the quiet time); gone after."""
        if holders.held(run_dir):
            return Signs(alive=True)
        now = time.time() if now is None else now
        quiet = last_sign is None or now - last_sign > self.quiet_after(run_dir, stall_after)
        return Signs(alive=False if quiet else None)  # changing: alive for all we know (a writer elsewhere)

    def state(self, run_dir: Path, status: Status, *, end_event: dict | None = None, last_sign: float | None = None,
              last_progress: float | None = None, now: float | None = None,
              stall_after: float = STALL_AFTER) -> str:
        if rule.written_final(status, end_event):
            return rule.decide(status, signs=Signs(), end_event=end_event)
        quiet = self.quiet_after(run_dir, stall_after)
        signs = self.signs(run_dir, status, last_sign=last_sign, now=now, stall_after=quiet)
        return rule.decide(status, signs=signs, end_event=end_event, last_sign=last_sign,
                           last_progress=last_progress, now=now, stall_after=quiet)

    @staticmethod
    def sample(statuses: list[Status]) -> None:
        """Scan the open files now (the watcher's schedule, `run ls` once) when any such run is not over."""
        if any(s.state not in rundir.FINAL_STATES for s in statuses):
            holders.sample()


class HfTrainerKind(FilesKind):
    name = "hf"
    tool = "the Hugging Face Trainer"
    label = "HF Trainer"

    def marks(self, folder: Path) -> bool:
        if (folder / TRAINER_STATE).is_file():
            return True
        for e in _entries(folder):
            if not e.is_dir():
                continue
            if CHECKPOINT.fullmatch(e.name) and os.path.isfile(os.path.join(e.path, TRAINER_STATE)):
                return True
            if e.name == HF_LOGS and any(w.is_dir() and holds_events(Path(w.path)) for w in _entries(Path(e.path))):
                return True
        return False

    def reader(self, run_dir: Path):
        from kidconsole.runs.foreign import HfReader

        return HfReader(run_dir)

    def quiet_after(self, run_dir: Path, stall_after: float) -> float:
        """A folder without event files changes only at its checkpoints: it is given one and a half times
        the gap between its two newest."""
        logs = run_dir / HF_LOGS
        if logs.is_dir() and any(holds_events(Path(w.path)) for w in _entries(logs) if w.is_dir()):
            return stall_after
        times = []
        for e in _entries(run_dir):
            if CHECKPOINT.fullmatch(e.name):
                try:
                    times.append(e.stat().st_mtime)
                except OSError:
                    continue
        times.sort()
        return max(stall_after, 1.5 * (times[-1] - times[-2])) if len(times) > 1 else stall_after


class TensorBoardKind(FilesKind):
    name = "tensorboard"
    tool = "its own trainer (TensorBoard event files)"
    label = "TensorBoard"

    def marks(self, folder: Path) -> bool:
        if folder.name == rundir.TENSORBOARD and any((folder.parent / f).is_file()
                                                     for f in (rundir.STATUS, rundir.EVENTS)):
            return False  # a run of ours's mirror: part of that run
        return holds_events(folder)

    def reader(self, run_dir: Path):
        from kidconsole.runs.foreign import TensorBoardReader

        return TensorBoardReader(run_dir)
