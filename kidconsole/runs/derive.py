"""Runs made from other runs without training: the average of a run's checkpoints, an ensemble of models.

This side is light: it chooses the checkpoints (``rundir.choose_checkpoints``), names the new run
directory (a sibling of the source unless told otherwise) and builds the command of the heavy job
(trainers/average.py, trainers/ensemble.py). The job is started as every job is (``life.start_job``:
detached, supervised, its output in the new run's stdout.log), and followed in the foreground by
``kidconsole run average`` (``life.follow_job``).
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Sequence

from kidconsole import rundir
from kidconsole.errors import KidconsoleError


def _checkpoints(run: Path, best: int | None, last: int | None, steps: list[int] | None) -> list[dict]:
    if not (run / rundir.CONFIG).exists():
        raise KidconsoleError(f"{run}: no {rundir.CONFIG}: not a run directory")
    try:
        return rundir.choose_checkpoints(run, best=best, last=last, steps=steps)
    except ValueError as e:
        raise KidconsoleError(str(e)) from None


def _how(best: int | None, last: int | None, steps: list[int] | None) -> tuple[str, str]:
    """(for the run's name, for its lineage)."""
    if best is not None:
        return f"best{best}", f"the {best} best checkpoints of the last phase"
    if last is not None:
        return f"last{last}", f"the last {last} checkpoints of the last phase"
    return "steps" + "-".join(map(str, steps or [])), f"the checkpoints of steps {', '.join(map(str, steps or []))}"


def new_run_dir(root: str | Path, name: str) -> Path:
    """``root/name``, made unique with the time when taken; created."""
    if not re.fullmatch(r"[\w.+-]+", name):
        raise KidconsoleError(f"run name {name!r}: use letters, digits, '.', '_', '+' or '-'")
    path = (Path(root) / name).resolve()
    if path.exists():
        path = path.with_name(f"{name}-{time.strftime('%Y%m%d-%H%M%S')}")
    if path.exists():
        raise KidconsoleError(f"{path} already exists: choose another --name")
    path.mkdir(parents=True)
    return path


def average_job(run: str | Path, *, best: int | None = None, last: int | None = None,
                steps: list[int] | None = None, lora: str = "deltas", name: str | None = None,
                runs_root: str | Path | None = None, python: str = sys.executable) -> tuple[Path, list[str]]:
    """(the new run directory, the command that fills it) for averaging checkpoints of ``run``."""
    run = Path(run).resolve()
    chosen = _checkpoints(run, best, last, steps)
    if len(chosen) < 2:
        raise KidconsoleError(f"{run}: averaging needs at least 2 checkpoints, {len(chosen)} chosen")
    tag, how = _how(best, last, steps)
    out = new_run_dir(runs_root or run.parent, name or f"{run.name}-avg-{tag}")
    argv = [python, "-m", rundir.AVERAGER, str(run), "--run-dir", str(out), "--lora", lora, "--method", how]
    for c in chosen:
        argv += ["--checkpoint", c["path"]]
    return out, argv


def ensemble_job(runs: Sequence[str | Path], *, best: int | None = None, name: str | None = None,
                 runs_root: str | Path | None = None, python: str = sys.executable) -> tuple[Path, list[str]]:
    """(the new run directory, the command) for an ensemble of finished ``runs``, or of the ``best`` N
    checkpoints of the one run given."""
    runs = [Path(r).resolve() for r in runs]
    if best is not None:
        if len(runs) != 1:
            raise KidconsoleError("--best N ensembles the checkpoints of one run: give exactly one RUN")
        chosen = _checkpoints(runs[0], best, None, None)
        if len(chosen) < 2:
            raise KidconsoleError(f"{runs[0]}: an ensemble needs at least 2 members, {len(chosen)} chosen")
        out = new_run_dir(runs_root or runs[0].parent, name or f"{runs[0].name}-ens-best{best}")
        argv = [python, "-m", rundir.ENSEMBLER, "--run-dir", str(out), "--source", str(runs[0]),
                "--method", _how(best, None, None)[1]]
        for c in chosen:
            argv += ["--checkpoint", c["path"]]
        return out, argv
    if len(runs) < 2:
        raise KidconsoleError("an ensemble needs at least 2 runs (or one RUN with --best N)")
    twice = sorted({str(r) for r in runs if runs.count(r) > 1})
    if twice:  # its posteriors would count twice: an ensemble of fewer models than it says
        raise KidconsoleError(f"{', '.join(twice)}: given twice: an ensemble takes each run once "
                              f"(a run's own checkpoints: one RUN with --best N)")
    for r in runs:
        if not (r / rundir.EXPORTS / "merged" / "config.json").exists():
            raise KidconsoleError(f"{r}: no exports/merged: only a finished run can join an ensemble")
    out = new_run_dir(runs_root or runs[0].parent, name or f"ens-{runs[0].name}-{len(runs)}runs")
    argv = [python, "-m", rundir.ENSEMBLER, "--run-dir", str(out), "--method", f"{len(runs)} runs"]
    for r in runs:
        argv += ["--run", str(r)]
    return out, argv
