"""Faults of the supervision layer, on real runs: the supervisor or the launcher killed mid-run,
`run stop`/`run resume`/`run ls` after that, and the liveness rule they share."""

from __future__ import annotations

import json
import os
import signal
import time

import psutil
import pytest

from kidconsole import rundir
from kidconsole.cli import main as cli_main
from kidconsole.runs.launch import launch_run
from kidconsole.runs.reader import RunReader
from runs_helpers import FAKE, session_pids, wait_for


@pytest.fixture(autouse=True)
def no_process_left():
    """Whatever a failing test leaves of its runs' sessions is killed (the runs live in tmp_path)."""
    before = set(psutil.pids())
    yield
    for p in set(psutil.pids()) - before:
        try:
            proc = psutil.Process(p)
            if any(str(a).startswith("/tmp/pytest-") for a in proc.cmdline()):
                proc.kill()
        except psutil.Error:
            pass


def _events(run_dir, kind):
    lines = (run_dir / rundir.EVENTS).read_text(encoding="utf-8").splitlines()
    return [e for e in map(json.loads, lines) if e["kind"] == kind]


def _long_run(make_config, tmp_path, name):
    cfg = make_config(phases=[{"name": "only", "epochs": 500, "lr": 3.0e-3, "warmup": 1}],
                      train__eval_every=100000, train__stop_timeout=60.0)
    run_dir = launch_run(cfg, runs_root=tmp_path / "runs", name=name)
    status = wait_for(lambda: (s := rundir.read_status(run_dir)).get("step", 0) >= 2 and s, 240, every=0.2)
    return run_dir, status


def _kill_and_reap(pid):
    os.kill(pid, signal.SIGKILL)
    try:
        os.waitpid(pid, 0)  # the test started it: reap it as init would once its launcher had exited
    except ChildProcessError:
        pass


@pytest.mark.slow
def test_stop_after_the_supervisor_died_checkpoints_and_ends(make_config, tmp_path, capsys, monkeypatch):
    from kidconsole.runs.control import stop_run

    monkeypatch.setenv("COLUMNS", "200")
    run_dir, status = _long_run(make_config, tmp_path, "orphaned")
    _kill_and_reap(status["pid"])
    assert session_pids(status["sid"])  # the launcher and the trainer carry on
    assert RunReader(run_dir).state() == rundir.RUNNING
    assert cli_main(["run", "ls", "--runs", str(tmp_path / "runs")]) == 0
    assert "running" in capsys.readouterr().out
    report = stop_run(run_dir, timeout=60)
    assert report.state == rundir.STOPPED and len(report.terminated) >= 2 and not report.killed
    assert str(report).startswith(f"stopped: SIGTERM to {len(report.terminated)} process(es); all ended within")
    assert session_pids(status["sid"]) == []
    status = rundir.read_status(run_dir)
    assert "killed_pids" not in status and status["error"] is None
    end = _events(run_dir, rundir.EV_END)
    assert end and end[-1]["state"] == rundir.STOPPED
    newest = rundir.newest_checkpoint(run_dir / rundir.CHECKPOINTS)
    assert newest is not None and newest.name == rundir.checkpoint_name(status["step"])  # the stop checkpoint


def test_a_clock_step_does_not_make_a_live_run_read_as_gone(tmp_path):
    """The clock stepped by 30 s since the run recorded its start: psutil's create_time moved, the
    start in ticks since boot did not. A stranger on a reused pid is still told apart."""
    import subprocess
    import sys

    from kidconsole.runs import liveness

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    try:
        me = liveness.identity(child.pid)
        run_dir = tmp_path / "stepped"
        rundir.update_status(run_dir, state=rundir.RUNNING, pid=child.pid, pgid=child.pid, sid=child.pid,
                             start_ticks=me["start_ticks"], create_time=me["create_time"] - 30)
        assert RunReader(run_dir).state() == rundir.RUNNING
        rundir.update_status(run_dir, start_ticks=me["start_ticks"] - 100)  # the recorded run started earlier
        assert RunReader(run_dir).state() == rundir.INTERRUPTED
    finally:
        child.kill()
        child.wait()


@pytest.mark.slow
def test_a_dead_launcher_stops_the_trainer_with_a_checkpoint(make_config, tmp_path):
    run_dir, status = _long_run(make_config, tmp_path, "headless")
    launcher = wait_for(lambda: rundir.read_status(run_dir).get("launcher_pid"))
    os.kill(launcher, signal.SIGKILL)
    t0 = time.time()
    wait_for(lambda: rundir.read_status(run_dir).get("state") in rundir.FINAL_STATES
             and not session_pids(status["sid"]), 120, every=0.2)
    assert time.time() - t0 < 120  # not the 300 s drain and a SIGKILL
    status = rundir.read_status(run_dir)
    assert status["state"] == rundir.STOPPED and "killed_pids" not in status
    assert status["error"].startswith("the launcher exited (killed by SIGKILL) while the trainer ran")
    assert _events(run_dir, rundir.EV_END)[-1]["state"] == rundir.STOPPED
    newest = rundir.newest_checkpoint(run_dir / rundir.CHECKPOINTS)
    assert newest is not None and newest.name == rundir.checkpoint_name(status["step"])  # resumable from there
