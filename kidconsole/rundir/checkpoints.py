"""Checkpoint folders: how they are named, when one is complete, which one is the newest.

A checkpoint of step N is ``checkpoints/step-0000000N/``. It is written as
``checkpoints/.tmp-step-0000000N/``, sealed with the empty ``COMPLETE``
marker and renamed: a folder is complete only under its final name with the
marker inside. A dot-folder (an unfinished write) is never a checkpoint, and
the newest is the one of the highest step, whatever the files' times say
(a folder restored from a backup has a new mtime and an old step).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from kidconsole.rundir.names import COMPLETE

PREFIX = "step-"
TMP_PREFIX = ".tmp-"
_NAME = re.compile(r"step-([0-9]+)")


def checkpoint_name(step: int) -> str:
    return f"{PREFIX}{step:08d}"


def checkpoint_step(name: str) -> int | None:
    """The step of a checkpoint folder's name; None for any other name (dot-folders included)."""
    m = _NAME.fullmatch(name)
    return int(m.group(1)) if m else None


def checkpoint_folders(root: str | Path) -> list[tuple[int, Path, bool]]:
    """(step, folder, complete) of every folder named like a checkpoint, oldest step first."""
    try:
        entries = [e for e in os.scandir(root) if e.is_dir()]
    except OSError:
        return []
    found = []
    for e in entries:
        step = checkpoint_step(e.name)
        if step is not None:
            found.append((step, Path(e.path), os.path.isfile(os.path.join(e.path, COMPLETE))))
    return sorted(found, key=lambda f: (f[0], f[1].name))


def complete_checkpoints(root: str | Path) -> list[Path]:
    """Complete checkpoints under ``root`` (a run's ``checkpoints/``), oldest step first."""
    return [path for _, path, complete in checkpoint_folders(root) if complete]


def newest_checkpoint(root: str | Path) -> Path | None:
    """The complete checkpoint of the highest step: the one a resume continues from."""
    found = complete_checkpoints(root)
    return found[-1] if found else None


def unfinished_writes(root: str | Path) -> list[Path]:
    """Checkpoint writes that never reached their rename (``.tmp-*``)."""
    try:
        return sorted(Path(e.path) for e in os.scandir(root) if e.is_dir() and e.name.startswith(TMP_PREFIX))
    except OSError:
        return []


def tmp_checkpoint(root: str | Path, name: str) -> Path:
    """Where a checkpoint is written before it is sealed."""
    return Path(root) / f"{TMP_PREFIX}{name}"


def seal_checkpoint(tmp: str | Path, final: str | Path) -> Path:
    """Complete a written checkpoint: the marker, then the rename (replacing an older one of that name)."""
    tmp, final = Path(tmp), Path(final)
    (tmp / COMPLETE).write_text("", encoding="utf-8")
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    return final
