"""Start a run's ONNX / INT8 export: a job (kinds/job.py) whose run directory is ``RUN/exports`` (its status
and ``end``; its output in ``RUN/exports/export.log``), started detached under its supervisor like every run,
by the console and by ``kidconsole export`` (which follows it). Each kind it makes is a run directory under
``RUN/exports/`` with its own status (trainers/export_job.py); its table is read with
``kidconsole.report.exports.read_exports``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Sequence

from kidconsole import rundir
from kidconsole.errors import KidconsoleError


def export_command(run: str | Path, options: Sequence[str] = ("--int8",), *, python: str = sys.executable) -> list[str]:
    """``python -m trainers.export_job RUN [OPTIONS]``: ``options`` as ``kidconsole export`` takes them."""
    return [python, "-m", rundir.EXPORTER, str(Path(run).resolve()), *options]


def start_export(run: str | Path, options: Sequence[str] = ("--int8",)) -> int:
    """Starts the export job of ``run`` detached and supervised; returns its supervisor's pid."""
    from kidconsole.runs.life import read_state, start_job

    run = Path(run).resolve()
    if not (run / rundir.CONFIG).is_file():
        raise KidconsoleError(f"{run}: not a run directory (no {rundir.CONFIG})")
    if not (run / rundir.EXPORTS / "merged").is_dir() and not (run / rundir.EXPORTS / "adapter").is_dir():
        raise KidconsoleError(f"{run}: nothing to export yet: no exports/merged (has the run finished?)")
    job = run / rundir.EXPORTS
    if (job / rundir.STATUS).is_file() and read_state(job) in rundir.STOPPABLE_STATES:
        raise KidconsoleError(f"{run}: an export is already running ({rundir.EXPORTS}/{rundir.EXPORT_LOG})")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CUDA_VISIBLE_DEVICES": ""}  # exports are timed on the CPU
    return start_job(job, export_command(run, options), env=env, log=rundir.EXPORT_LOG,
                     name=f"{run.name}/{rundir.EXPORTS}")
