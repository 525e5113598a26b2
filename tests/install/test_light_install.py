"""`pip install kidconsole` (the wheel, no extra) into a fresh venv without torch gives the console on recorded
runs, `run ls`, `report`, `config` and every command's --help; a heavy command names its extra. The checks run
in that venv (installed_checks.py); about a minute and a half, most of it pip."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


@pytest.mark.slow
def test_the_wheel_without_extras_opens_the_console_lists_runs_and_reports_with_no_torch(tmp_path):
    wheels = tmp_path / "wheel"
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(REPO)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = wheels.glob("kidconsole-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    done = subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run([str(py), str(HERE / "installed_checks.py"), str(REPO / "tests" / "console" / "recordings"),
                           str(work)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    assert "--help pages, all light" in done.stdout
