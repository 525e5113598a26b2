"""Run directories written to harm their reader: files that are not regular files, huge files, and names
and texts carrying terminal escapes or Rich markup. ``run ls`` and ``run logs`` run as a user runs them,
in a child with a deadline and a memory cap (unbounded, they hung or took gigabytes)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from kidconsole import rundir

REPO = Path(__file__).resolve().parents[2]
MEMORY_CAP = 2 << 30


def _capped():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def cli(*args, timeout: float = 30) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "kidconsole", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout, preexec_fn=_capped)


def make_run(root: Path, name: str, **status) -> Path:
    run = root / name
    rundir.update_status(run, name=status.pop("shown", name), state=rundir.FINISHED, step=20, total_steps=20,
                         **status)
    (run / rundir.EVENTS).write_text(json.dumps({"t": 1.0, "kind": "eval", "step": 20, "per": 0.25}) + "\n")
    (run / rundir.STDOUT).write_text("hello from the trainer\n")
    return run


@pytest.mark.parametrize("target", ["/dev/urandom", "fifo"])
def test_run_logs_reads_only_a_regular_file(tmp_path, target):
    run = make_run(tmp_path / "runs", "alpha")
    (run / rundir.STDOUT).unlink()
    if target == "fifo":
        os.mkfifo(run / rundir.STDOUT)
    else:
        (run / rundir.STDOUT).symlink_to(target)
    done = cli("run", "logs", "alpha", "--runs", tmp_path / "runs")
    kind = "a FIFO" if target == "fifo" else "a character device"
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == f"(stdout.log: {kind}, not a regular file: not read)"


def test_run_logs_reads_only_the_tail_of_a_huge_log(tmp_path):
    run = make_run(tmp_path / "runs", "alpha")
    with open(run / rundir.STDOUT, "wb") as fh:  # 8 GiB, sparse: no newline until the last line
        fh.truncate(8 << 30)
        fh.seek(0, os.SEEK_END)
        fh.write(b"\nthe last line\n")
    done = cli("run", "logs", "alpha", "--runs", tmp_path / "runs", "-n", "5")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.endswith("the last line\n") and len(done.stdout) < 300 << 10


@pytest.mark.parametrize("file", [rundir.STATUS, rundir.EVENTS, rundir.CONFIG, rundir.DECODES, rundir.QUEUE])
def test_run_ls_does_not_block_on_a_fifo_in_a_run(tmp_path, file):
    root = tmp_path / "runs"
    make_run(root, "good")
    run = make_run(root, "trap")
    where = root if file == rundir.QUEUE else run
    (where / file).unlink(missing_ok=True)
    os.mkfifo(where / file)
    done = cli("run", "ls", "--runs", root, timeout=30)
    assert "good" in done.stdout, done.stdout + done.stderr[-2000:]
    if file != rundir.QUEUE:
        assert done.returncode == 0 and "trap" in done.stdout, done.stdout + done.stderr[-2000:]
    else:  # the queue's order is unreadable: said so, naming the file
        assert "queue.json" in done.stdout + done.stderr
