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
from runs_helpers import hold_slot

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


# an OSC that sets the terminal's title, a CSI that clears the screen, a bell, Rich markup, a bidi override
EVIL = "\x1b]0;PWNED\x07\x1b[2J[bold red]red[/]\u202e"
SHOWN = "\\x1b]0;PWNED\\x07\\x1b[2J[bold red]red[/]\\u202e"
DIR = "r[blink]x\x1b]0;PWNED\x07"  # a directory name cannot hold "/"
DIR_SHOWN = "r[blink]x\\x1b]0;PWNED\\x07"
CONTROLS = ("\x1b", "\x07", "\u202e", "\x9b")


def assert_text(out: str, *expected: str) -> None:
    leaked = [c for c in CONTROLS if c in out]
    assert not leaked, f"control characters in the output: {leaked}\n{out!r}"
    for part in expected:
        assert part in out, f"{part!r} not in:\n{out}"


def test_run_ls_queue_ls_and_logs_print_names_and_lines_as_text(tmp_path):
    root = tmp_path / "runs"
    run = make_run(root, DIR, shown="n" + EVIL)
    with open(run / rundir.STDOUT, "a") as fh:
        fh.write("log " + EVIL + "\n")
    hold_slot(root)  # the queued run stays queued
    queued = root / ("q" + DIR)
    rundir.update_status(queued, name="q", state=rundir.QUEUED, queue_position=1, waiting_for="w" + EVIL,
                         sweep="s" + EVIL, gpus_per_run=1, queued_at=1.0)
    (root / rundir.QUEUE).write_text(json.dumps({"order": [queued.name]}))
    done = cli("run", "ls", "--runs", root)
    assert done.returncode == 0, done.stderr[-2000:]
    assert_text(done.stdout + done.stderr, DIR_SHOWN)
    done = cli("run", "queue", "ls", "--runs", root)
    assert_text(done.stdout + done.stderr, "q" + DIR_SHOWN, "s" + SHOWN)
    done = cli("run", "logs", DIR, "--runs", root)
    assert_text(done.stdout + done.stderr, "log " + SHOWN)


def test_errors_and_reports_print_what_they_quote_as_text(tmp_path):
    root = tmp_path / "runs"
    run = make_run(root, DIR, shown="n" + EVIL, error="boom " + EVIL)
    done = cli("run", "average", DIR, "--best", "2", "--runs", root)  # no config.yaml: an error naming the run
    assert done.returncode == 2
    assert_text(done.stderr, DIR_SHOWN)
    rundir.write_rows(run / rundir.PREDICTIONS, rundir.PredictionRow, [
        {"id": f"u{i}" + EVIL, "ref": "A B C", "hyp": "A" + EVIL, "speaker": "s" + EVIL, "age": 5.0 + i,
         "gender": "F", "split": "test"} for i in range(4)])
    for fmt in ([], ["--format", "md"], ["--format", "csv"]):
        done = cli("report", run, *fmt)
        assert done.returncode == 0, done.stderr[-2000:]
        assert_text(done.stdout + done.stderr, "s" + SHOWN if fmt else "speaker s\\x1b]0;PWNED")


def test_other_tools_files_that_are_fifos_are_not_waited_on(tmp_path):
    """A TensorBoard event file and a Trainer's trainer_state.json are read by the console's watcher as well:
    a FIFO in their place reads as nothing (it blocked the reader for good)."""
    tb = tmp_path / "tb"
    tb.mkdir()
    os.mkfifo(tb / "events.out.tfevents.1.host")
    hf = tmp_path / "hf"
    hf.mkdir()
    os.mkfifo(hf / "trainer_state.json")
    code = (f"from kidconsole.runs.tfevents import EventFileTail\nfrom kidconsole.runs.hf_state import HfStateTail\n"
            f"print(EventFileTail({str(tb / 'events.out.tfevents.1.host')!r}).read())\n"
            f"h = HfStateTail({str(hf)!r})\nprint(h.poll(), h.error)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr[-2000:]
    first, second = done.stdout.splitlines()
    assert first == "{}" and second.startswith("False"), done.stdout
