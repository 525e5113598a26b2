"""Checkpoint folders: how they are named, when one is complete, which one is the newest, which ones to
average.

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

from kidconsole.jsonl import read_jsonl
from kidconsole.rundir.names import CHECKPOINTS, COMPLETE, EV_CHECKPOINT, EVENTS
from kidconsole.rundir.records import CheckpointEvent

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


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def seal_checkpoint(tmp: str | Path, final: str | Path) -> Path:
    """Complete a written checkpoint: every file and folder of it on disk, then the marker (on disk too),
    then the rename (replacing an older one of that name), made durable by syncing the checkpoints folder.
    Without the syncs, a crash soon after could leave a sealed checkpoint whose data never reached the disk:
    files cut short, and a resume that fails on them."""
    tmp, final = Path(tmp), Path(final)
    for folder, dirs, files in os.walk(tmp, topdown=False):
        for name in files + dirs:
            _fsync(Path(folder) / name)
    _fsync(tmp)  # its entries
    (tmp / COMPLETE).write_text("", encoding="utf-8")
    _fsync(tmp / COMPLETE)
    _fsync(tmp)
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    _fsync(final.parent)
    return final


def last_phase_checkpoints(run_dir: str | Path) -> list[dict]:
    """The complete checkpoints of a run's last phase that an evaluation scored, oldest step first:
    ``{"name", "step", "path", "metric"}`` (the metric its phase monitors; lower is better). Read from the
    ``checkpoint`` events of events.jsonl, kept only while the folder is still on disk (pruning removes some)."""
    run_dir = Path(run_dir)
    events = [ev for _, ev, why in read_jsonl(run_dir / EVENTS, "events")
              if why is None and isinstance(ev, dict) and ev.get("kind") == EV_CHECKPOINT
              and CheckpointEvent.problem(ev) is None]
    scored = [ev for ev in events if ev.get("metric") is not None and ev.get("name") and ev.get("phase")]
    if not scored:
        return []
    last = max(ev["phase"] for ev in scored)
    on_disk = {p.name: p for p in complete_checkpoints(run_dir / CHECKPOINTS)}
    by_name = {ev["name"]: ev for ev in scored if ev["phase"] == last and ev["name"] in on_disk}  # newest event wins
    return sorted(({"name": n, "step": checkpoint_step(n), "path": str(on_disk[n]), "metric": float(ev["metric"])}
                   for n, ev in by_name.items()), key=lambda c: c["step"])


def choose_checkpoints(run_dir: str | Path, *, best: int | None = None, last: int | None = None,
                       steps: list[int] | None = None) -> list[dict]:
    """The checkpoints of the last phase to average or ensemble: the ``best`` N by their metric, the ``last``
    N by step, or those of ``steps`` (each once: a step given twice is refused, it is most likely a typo for
    another, and averaging fewer checkpoints than asked would pass unseen). ValueError says what is missing
    and what there is."""
    found = last_phase_checkpoints(run_dir)
    have = ", ".join(f"{c['step']} ({c['metric']:.4f})" for c in found) or "none"
    if sum(x is not None for x in (best, last, steps)) != 1:
        raise ValueError("choose the checkpoints one way: --best N, --last N or --steps S1,S2,...")
    if steps is not None:
        twice = sorted({s for s in steps if steps.count(s) > 1})
        if twice:
            raise ValueError(f"--steps {','.join(map(str, steps))}: step {', '.join(map(str, twice))} given twice: "
                             f"give each checkpoint once")
        by_step = {c["step"]: c for c in found}
        missing = [s for s in steps if s not in by_step]
        if missing:
            raise ValueError(f"{run_dir}: no scored checkpoint of the last phase at step "
                             f"{', '.join(map(str, missing))} (there are: {have})")
        chosen = [by_step[s] for s in steps]
    else:
        n = best if best is not None else last
        if n < 1:
            raise ValueError(f"--{'best' if best is not None else 'last'} {n}: at least 1")
        if len(found) < n:
            raise ValueError(f"{run_dir}: the last phase has {len(found)} scored checkpoints on disk, not {n} "
                             f"(steps and metrics: {have}; training keeps train.keep_last besides the best)")
        chosen = sorted(found, key=lambda c: (c["metric"], -c["step"]))[:n] if best is not None else found[-n:]
    return sorted(chosen, key=lambda c: c["step"])
