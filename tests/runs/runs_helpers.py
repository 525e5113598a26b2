"""Helpers shared by the runs tests (conftest puts this folder on sys.path)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import psutil

from kidconsole import rundir

FAKE = "fake_trainer"


def fake_command(run_dir: Path, *args: str) -> list[str]:
    """The fake trainer started directly by python (no accelerate: 5 s faster)."""
    return [sys.executable, "-m", FAKE, "--config", str(run_dir / "config.yaml"), "--run-dir", str(run_dir), *args]


def wait_for(predicate, timeout: float = 30.0, every: float = 0.05):
    deadline = time.monotonic() + timeout  # the wall clock here can step
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {predicate}")


def session_pids(sid: int) -> list[int]:
    out = []
    for p in psutil.process_iter(["status"]):
        try:
            if os.getsid(p.pid) == sid and p.info["status"] != psutil.STATUS_ZOMBIE:
                out.append(p.pid)
        except OSError:
            continue
    return out

# what a resume in these tests may start: the project's trainers and the fake one
TEST_TRAINERS = ("trainers.train", "trainers.score", FAKE)

def hold_slot(root: Path, name: str = "holder", gpus: list[int] | None = None) -> Path:
    """A live run of the runs root: this test process is its supervisor, so it holds a slot until
    its status says it ended."""
    run_dir = root / name
    me = psutil.Process()
    rundir.update_status(run_dir, name=name, state=rundir.RUNNING, pid=me.pid, create_time=me.create_time(),
                         gpus=gpus or [])
    return run_dir


def release(run_dir: Path) -> None:
    rundir.update_status(run_dir, state=rundir.FINISHED, ended_at=time.time())
