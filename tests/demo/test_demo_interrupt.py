"""Ctrl-C during the demo stops the runs it started: nothing is left running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_ctrl_c_during_the_base_training_stops_the_run_and_exits_130(tmp_path):
    work = tmp_path / "demo"
    proc = subprocess.Popen([sys.executable, "-m", "kidconsole", "demo", "--headless", "--quick", "--work", str(work)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    status_files = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        status_files = list((work / "base-runs").glob("base-*/status.json"))
        if status_files and json.loads(status_files[0].read_text() or "{}").get("state") == "running":
            break
        time.sleep(0.5)
    assert status_files, "the demo never started its base run"
    status = json.loads(status_files[0].read_text())
    assert status["state"] == "running"
    proc.send_signal(signal.SIGINT)  # what the terminal sends on Ctrl-C
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out[-3000:]

    status = json.loads(status_files[0].read_text())
    assert status["state"] == "stopped"
    assert not alive_in_group(status["pgid"])


def alive_in_group(pgid: int) -> list[int]:
    out = []
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p.pid)
        except (ProcessLookupError, psutil.Error):
            pass
    return out
