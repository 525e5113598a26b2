"""Runs made from other runs without training: the average of a run's checkpoints, an ensemble of models.

This side is light: it chooses the checkpoints (``rundir.choose_checkpoints``), names the new run
directory (a sibling of the source unless told otherwise) and builds the command of the heavy job
(trainers/average.py, trainers/ensemble.py), which it runs in the foreground (``kidconsole run average``)
or starts detached (the console's key), its output in the new run's stdout.log either way.
"""

from __future__ import annotations

import os
import re
import subprocess
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


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def _announce(out: Path, argv: list[str]) -> None:
    # a card for the console at once; the job records its pid and state itself when it starts
    rundir.update_status(out, name=out.name, state=rundir.STARTING, command=argv, gpus=[],
                         started_at=round(time.time(), 3))


def _record_process(out: Path, pid: int, detached: bool) -> None:
    import psutil

    try:
        created = psutil.Process(pid).create_time()
    except psutil.Error:
        created = None
    group = {"pgid": pid, "sid": pid} if detached else {}
    rundir.update_status(out, pid=pid, create_time=created, **group)


def run_job(out: Path, argv: list[str]) -> int:
    """Run the job in the foreground: its output on the terminal and in ``out/stdout.log``."""
    _announce(out, argv)
    with open(out / rundir.STDOUT, "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env=_env())
        _record_process(out, proc.pid, detached=False)
        try:
            for line in proc.stdout:
                log.write(line)
                log.flush()
                sys.stdout.write(line.decode("utf-8", errors="replace"))
                sys.stdout.flush()
        except KeyboardInterrupt:
            proc.terminate()  # the job's stop request: it ends its run directory as stopped
        return proc.wait()


def start_job(out: Path, argv: list[str]) -> int:
    """Start the job detached (its own session, no tty), as the console starts runs; returns its pid."""
    _announce(out, argv)
    with open(out / rundir.STDOUT, "ab") as log:
        proc = subprocess.Popen(argv, start_new_session=True, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=_env(), close_fds=True)
    _record_process(out, proc.pid, detached=True)
    proc.returncode = 0  # not ours to reap: keep Popen's destructor from warning about a live child
    return proc.pid
