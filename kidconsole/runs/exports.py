"""Start a run's ONNX / INT8 export in the background, as the console does with training: a detached
process (its own session, no tty) whose output goes to ``RUN/exports/export.log``. Each kind it makes is a
run directory under ``RUN/exports/`` with its own status (trainers/export_job.py); its table is read with
``kidconsole.report.exports.read_exports``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from kidconsole import rundir
from kidconsole.errors import KidconsoleError

def export_command(run: str | Path, *, int8: bool = True, python: str = sys.executable) -> list[str]:
    """``kidconsole export RUN --onnx [--int8]`` (which runs trainers/export_job.py)."""
    return [python, "-m", "kidconsole", "export", str(Path(run).resolve()), "--onnx"] + (["--int8"] if int8 else [])


def start_export(run: str | Path, *, int8: bool = True) -> int:
    """Starts the export job of ``run`` detached; returns its pid."""
    run = Path(run)
    if not (run / rundir.EXPORTS / "merged").is_dir() and not (run / rundir.EXPORTS / "adapter").is_dir():
        raise KidconsoleError(f"{run}: nothing to export yet: no exports/merged (has the run finished?)")
    log_path = run / rundir.EXPORTS / rundir.EXPORT_LOG
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CUDA_VISIBLE_DEVICES": ""}  # exports are timed on the CPU
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(export_command(run, int8=int8), start_new_session=True, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, env=env, close_fds=True)
    proc.returncode = 0  # not ours to reap: keep Popen's destructor from warning about a live child
    return proc.pid
