"""Find run directories under one or more roots."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

from kidconsole import rundir
from kidconsole.bounded import open_regular

MAX_DEPTH = 3


def is_run_dir(path: Path) -> bool:
    """A run of ours (status.json or events.jsonl), or one a read-only kind recognises by its own files."""
    from kidconsole.runs.kinds import marked

    return (path / rundir.STATUS).is_file() or (path / rundir.EVENTS).is_file() or marked(path)


def _start_time(run: Path) -> float:
    started = rundir.read_status_record(run).started_at
    if isinstance(started, (int, float)):
        return float(started)
    try:
        with open_regular(run / rundir.EVENTS) as fh:
            first = json.loads(fh.readline(1 << 16))
        if rundir.event_problem(first) is None and first.get("t") is not None:
            return float(first["t"])
    except (OSError, ValueError):
        pass
    try:
        return run.stat().st_mtime
    except OSError:
        return 0.0


def find_runs(roots: Sequence[str | Path], max_depth: int = MAX_DEPTH) -> list[Path]:
    """Run directories (a folder with status.json or events.jsonl) up to ``max_depth`` below each root,
    oldest start first. A root may itself be a run. Missing roots are skipped."""
    found: dict[Path, None] = {}

    def walk(folder: Path, depth: int) -> None:
        if is_run_dir(folder):
            found.setdefault(folder.resolve(), None)
            return  # a run's own subfolders (checkpoints, exports) are not runs
        if depth >= max_depth:
            return
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for e in entries:
            if not e.name.startswith(".") and e.is_dir():
                walk(Path(e.path), depth + 1)

    for root in roots:
        root = Path(root).expanduser()
        if root.is_dir():
            walk(root, 0)
    return sorted(found, key=lambda p: (_start_time(p), str(p)))
