"""Start a run's ONNX / INT8 export in the background, as the console does: a job (kinds/job.py) whose run
directory is ``RUN/exports`` (its status and ``end``; its output in ``RUN/exports/export.log``), started
detached under its supervisor like every run. Each kind it makes is a run directory under ``RUN/exports/``
with its own status (trainers/export_job.py); its table is read with ``kidconsole.report.exports.read_exports``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from kidconsole import rundir
from kidconsole.errors import KidconsoleError


def export_command(run: str | Path, *, int8: bool = True, python: str = sys.executable) -> list[str]:
    """``kidconsole export RUN --onnx [--int8]`` (which runs trainers/export_job.py)."""
    return [python, "-m", "kidconsole", "export", str(Path(run).resolve()), "--onnx"] + (["--int8"] if int8 else [])


def start_export(run: str | Path, *, int8: bool = True) -> int:
    """Starts the export job of ``run`` detached and supervised; returns its supervisor's pid."""
    from kidconsole.runs.life import start_job

    run = Path(run).resolve()
    if not (run / rundir.EXPORTS / "merged").is_dir() and not (run / rundir.EXPORTS / "adapter").is_dir():
        raise KidconsoleError(f"{run}: nothing to export yet: no exports/merged (has the run finished?)")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CUDA_VISIBLE_DEVICES": ""}  # exports are timed on the CPU
    return start_job(run / rundir.EXPORTS, export_command(run, int8=int8), env=env, log=rundir.EXPORT_LOG,
                     name=f"{run.name}/{rundir.EXPORTS}")
