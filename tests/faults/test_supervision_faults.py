"""Faults of the supervision layer, on real runs: the supervisor or the launcher killed mid-run,
`run stop`/`run resume`/`run ls` after that, and the liveness rule they share."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from kidconsole import rundir
from kidconsole.cli import main as cli_main
from kidconsole.runs.launch import launch_run
from kidconsole.runs.reader import RunReader
from runs_helpers import FAKE, session_pids, wait_for


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
    from kidconsole.runs.life import stop as stop_run

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
    t0 = time.monotonic()
    wait_for(lambda: rundir.read_status(run_dir).get("state") in rundir.FINAL_STATES
             and not session_pids(status["sid"]), 120, every=0.2)
    assert time.monotonic() - t0 < 120  # not the 300 s drain and a SIGKILL
    status = rundir.read_status(run_dir)
    assert status["state"] == rundir.STOPPED and "killed_pids" not in status
    assert status["error"].startswith("the launcher exited (killed by SIGKILL) while the trainer ran")
    assert _events(run_dir, rundir.EV_END)[-1]["state"] == rundir.STOPPED
    newest = rundir.newest_checkpoint(run_dir / rundir.CHECKPOINTS)
    assert newest is not None and newest.name == rundir.checkpoint_name(status["step"])  # resumable from there


# ---------- names, run directories, what a resume may start ----------

@pytest.mark.parametrize("name, why", [(".", "cannot be '.' or '..'"), ("..", "cannot be '.' or '..'"),
                                       (".hidden", "must start with a letter, a digit or '_'"),
                                       ("a" * 300, "300 characters: at most 100")])
def test_run_names_that_escape_hide_or_overflow_are_refused(name, why, tmp_path, run_config):
    from kidconsole.errors import KidconsoleError

    root = tmp_path / "runs"
    with pytest.raises(KidconsoleError, match=f"run name .*{why}"):
        launch_run(run_config, runs_root=root, name=name, trainer_module=FAKE)
    assert not root.exists() or not any(root.iterdir())  # not the root itself made a run
    assert {p.name for p in tmp_path.iterdir()} <= {"model", "runs", "tiny.yaml", "train.tsv", "valid.tsv"}


def test_a_launch_that_loses_the_race_for_a_name_says_it_already_exists(tmp_path, run_config, monkeypatch):
    """The other launch creates the directory after any check this one makes and before its own mkdir:
    here the directory exists, but a look at it (as this launch's look came too early) says it does not."""
    from pathlib import Path

    from kidconsole.errors import KidconsoleError
    from kidconsole.runs import launch

    contested = (tmp_path / "runs" / "contested").resolve()
    contested.mkdir(parents=True)  # the winner's
    real_exists = Path.exists
    monkeypatch.setattr(Path, "exists", lambda self, **kw: False if self == contested else real_exists(self, **kw))
    with pytest.raises(KidconsoleError, match="already exists"):
        launch.launch_run(run_config, runs_root=tmp_path / "runs", name="contested", trainer_module=FAKE)
    assert not any((tmp_path / "runs" / "contested").iterdir())  # the winner's directory untouched


def test_resume_starts_only_the_projects_trainer_entry_points(tmp_path):
    from kidconsole.errors import KidconsoleError
    from kidconsole.runs.life import resume as resume_run

    run_dir = tmp_path / "planted"
    rundir.update_status(run_dir, state=rundir.STOPPED, trainer_module="os.system_payload")
    (run_dir / rundir.CONFIG).write_text("name: x\n")
    (run_dir / rundir.CHECKPOINTS / "step-00000001").mkdir(parents=True)
    (run_dir / rundir.CHECKPOINTS / "step-00000001" / "COMPLETE").write_text("")
    with pytest.raises(KidconsoleError, match=r"trainer_module 'os.system_payload' is not one of the project's "
                                              r"trainer entry points \(trainers.train, trainers.score\)"):
        resume_run(run_dir)
    assert "pid" not in rundir.read_status(run_dir)  # nothing was started


@pytest.mark.slow
def test_new_run_directories_are_not_world_writable_whatever_the_umask(tmp_path, fake_env, run_config):
    old = os.umask(0)
    try:
        run_dir = launch_run(run_config, runs_root=tmp_path / "runs", name="private", trainer_module=FAKE)
        wait_for(lambda: rundir.read_status(run_dir).get("state") in rundir.FINAL_STATES, 60)
    finally:
        os.umask(old)
    wait_for(lambda: not session_pids(rundir.read_status(run_dir)["sid"]), 30)
    writable = [p for p in [run_dir, *run_dir.rglob("*")] if p.stat().st_mode & 0o002]
    assert writable == []
