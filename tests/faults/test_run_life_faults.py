"""Faults of a run's life, on real processes: a queue that hands out a slot still in use or strands its runs,
a run that beats in place, a stop that trusts a bare pid, a launch killed half-way. Each test reproduced its
fault before the fix (docs/reliability.md)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

from kidconsole import rundir
from kidconsole.cli import main as cli_main
from kidconsole.errors import KidconsoleError
from kidconsole.runs import queue
from kidconsole.runs.launch import launch_run, start_detached
from kidconsole.runs.life import resume as resume_run, stop as stop_run
from kidconsole.runs.reader import RunReader
from runs_helpers import FAKE, TEST_TRAINERS, fake_command, hold_slot, release, session_pids, wait_for


def _points(run_config, *names):
    return [(run_config, [], name, {}) for name in names]


def _checkpointed(run_dir, step=3):
    ckpt = rundir.tmp_checkpoint(run_dir / rundir.CHECKPOINTS, rundir.checkpoint_name(step))
    ckpt.mkdir(parents=True)
    (ckpt / "state.txt").write_text(str(step))
    return rundir.seal_checkpoint(ckpt, run_dir / rundir.CHECKPOINTS / rundir.checkpoint_name(step))


# ---------- the queue: a slot is held while any process of the run lives ----------

@pytest.mark.slow
def test_a_queued_runs_killed_supervisor_does_not_free_its_slot_while_its_trainer_trains(run_config, tmp_path,
                                                                                       fake_env):
    fake_env.setenv("FAKE_STEPS", "100000")
    root = tmp_path / "runs"
    queue.set_limits(root, cpu_slots=1)
    first, second = queue.launch_queued(_points(run_config, "first", "second"), runs_root=root, trainer_module=FAKE)
    status = wait_for(lambda: (s := rundir.read_status(first)).get("state") == rundir.RUNNING and s, 120)
    os.kill(status["pid"], signal.SIGKILL)  # the supervisor; the launcher and the trainer train on
    wait_for(lambda: not psutil.pid_exists(status["pid"]) or psutil.Process(status["pid"]).status() == "zombie")
    step = rundir.read_status(first)["step"]
    wait_for(lambda: rundir.read_status(first)["step"] > step)  # still training: its slot is in use
    assert queue.pump(root) == []
    assert rundir.read_status(second)["state"] == rundir.QUEUED
    assert "a CPU slot (0 of 1 free)" in rundir.read_status(second)["waiting_for"]
    assert stop_run(first, timeout=30).state == rundir.STOPPED  # its processes gone, the slot is free
    assert queue.pump(root) == [second]
    assert stop_run(second, timeout=30).state == rundir.STOPPED


@pytest.mark.slow
def test_a_queued_run_whose_supervisor_was_killed_starts_the_next_when_it_ends(make_config, tmp_path):
    """Its supervisor would have passed over the queue as it exited; killed, it never does, and the next run
    waited for whoever next ran `run ls` or `run queue`. The run's own process does it instead."""
    root = tmp_path / "runs"
    queue.set_limits(root, cpu_slots=1)
    cfg = make_config(phases=[{"name": "only", "epochs": 500, "max_steps": 40, "lr": 3.0e-3, "warmup": 1}],
                      train__eval_every=100000)
    first, second = queue.launch_queued([(cfg, [], "first", {}), (cfg, [], "second", {})], runs_root=root)
    status = wait_for(lambda: (s := rundir.read_status(first)).get("step", 0) >= 2 and s, 240, every=0.2)
    os.kill(status["pid"], signal.SIGKILL)  # the supervisor; the launcher and the trainer train on
    try:
        os.waitpid(status["pid"], 0)
    except ChildProcessError:
        pass
    assert rundir.read_status(second)["state"] == rundir.QUEUED
    wait_for(lambda: rundir.read_status(first).get("state") == rundir.FINISHED, 240)
    # nobody passes over the queue here: the first run's trainer started the second as it ended
    wait_for(lambda: rundir.read_status(second).get("state") != rundir.QUEUED, 60)
    assert stop_run(second, timeout=60).state in (rundir.STOPPED, rundir.FINISHED)


def test_resuming_a_queued_run_waits_in_the_queue_for_its_slot(run_config, tmp_path, fake_env):
    root = tmp_path / "runs"
    holder = hold_slot(root)
    (run,) = queue.launch_queued(_points(run_config, "again"), runs_root=root, trainer_module=FAKE)
    queue.cancel(run)  # as a run stopped after it trained: stopped, with a checkpoint
    _checkpointed(run)
    done = resume_run(run, trainer_modules=TEST_TRAINERS)
    status = rundir.read_status(run)
    assert status["state"] == rundir.QUEUED and status["queue_position"] == 1, done  # not on the held slot
    assert "pid" not in status and status["resumed_from"] == rundir.checkpoint_name(3)
    assert "#1 in the queue" in done
    release(holder)
    assert queue.pump(root) == [run]
    assert "--resume" in rundir.read_status(run)["command"]
    wait_for(lambda: rundir.read_status(run).get("state") == rundir.FINISHED, 60)
    starts = [json.loads(ln) for ln in (run / rundir.EVENTS).read_text().splitlines()]
    assert [e["step"] for e in starts if e["kind"] == "start"] == [3]  # it continued from the checkpoint


# ---------- the queue: its runs' statuses are the truth, queue.json only their order ----------

def test_a_launch_into_a_broken_queue_leaves_no_run_and_removing_the_file_frees_the_stranded(run_config, tmp_path,
                                                                                            fake_env, capsys):
    root = tmp_path / "runs"
    holder = hold_slot(root)
    (stranded,) = queue.launch_queued(_points(run_config, "stranded"), runs_root=root, trainer_module=FAKE)
    (root / rundir.QUEUE).write_text("{not json")
    code = cli_main(["run", "launch", str(run_config), "--gpus", "auto", "--name", "late", "--runs-root", str(root),
                     "--trainer", FAKE])
    err = capsys.readouterr().err
    assert code == 2 and "queue.json" in err and "fix or remove it" in err
    assert not (root / "late").exists()  # a failed enqueue leaves no run behind
    (root / rundir.QUEUE).unlink()  # as the message advises
    assert cli_main(["run", "queue", "ls", "--runs-root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "stranded" in out and "nothing queued" not in out
    assert rundir.read_status(stranded)["queue_position"] == 1
    release(holder)
    assert queue.pump(root) == [stranded]
    wait_for(lambda: rundir.read_status(stranded).get("state") == rundir.FINISHED, 60)


def test_queued_runs_the_queue_file_does_not_list_join_its_order_by_when_they_were_queued(run_config, tmp_path,
                                                                                         fake_env):
    root = tmp_path / "runs"
    holder = hold_slot(root)
    a, b, c = queue.launch_queued(_points(run_config, "a", "b", "c"), runs_root=root, trainer_module=FAKE)
    rundir.update_status(a, queued_at=3.0)
    rundir.update_status(b, queued_at=1.0)
    (root / rundir.QUEUE).write_text(json.dumps({"order": ["c"]}))  # a file that lost two of them
    assert queue.queued_runs(root) == [c, b, a]
    assert queue.pump(root) == []
    assert [rundir.read_status(r)["queue_position"] for r in (c, b, a)] == [1, 2, 3]
    assert queue.read_queue(root)["order"] == ["c", "b", "a"]
    for r in (a, b, c):
        queue.cancel(r)
    release(holder)


# ---------- progress, not the heartbeat, decides stalled ----------

def test_a_run_that_beats_in_place_is_stalled(tmp_path, fake_env, capsys):
    """A trainer stuck at one step (a read blocked on a hung mount) whose heartbeat goes on: `run ls` and the
    console's card say stalled once it has made no progress for --stall-after seconds."""
    from kidconsole.tui.watcher import Watcher

    fake_env.setenv("FAKE_STEPS", "100000")
    fake_env.setenv("FAKE_HANG_AT", "5")
    run_dir = tmp_path / "runs" / "stuck"
    run_dir.mkdir(parents=True)
    (run_dir / rundir.CONFIG).write_text("name: stuck\n")
    rundir.update_status(run_dir, name="stuck", state=rundir.STARTING, gpus=[], trainer_module=FAKE)
    start_detached(run_dir, fake_command(run_dir), [])
    wait_for(lambda: rundir.read_status(run_dir).get("step") == 5, 60)
    time.sleep(3.0)

    def listed():
        assert cli_main(["run", "ls", "--runs", str(tmp_path / "runs"), "--json", "--stall-after", "2"]) == 0
        return json.loads(capsys.readouterr().out)[0]

    beats = [json.loads(ln) for ln in (run_dir / rundir.EVENTS).read_text().splitlines()]
    assert time.time() - beats[-1]["t"] < 1.5 and beats[-1]["kind"] == "heartbeat"  # its heartbeat is fresh
    assert listed()["state"] == rundir.STALLED and listed()["step"] == 5
    watcher = Watcher([str(tmp_path / "runs")], system=False)
    watcher.poll_once()
    (view,) = watcher.views.values()
    assert RunReader(run_dir).state() == rundir.RUNNING  # within the default 300 s it is not judged yet
    reader = RunReader(run_dir)
    reader.poll()
    assert reader.state(stall_after=2) == rundir.STALLED
    assert view.step == 5
    assert stop_run(run_dir, timeout=30).state == rundir.STOPPED


def test_a_run_stuck_with_a_live_heartbeat_is_stalled_and_one_that_advances_is_not(tmp_path):
    """The rule on written events: heartbeats in place (same step, same work) make no progress; a heartbeat
    whose work advances (an evaluation's batches) does, and so does any other event."""
    me = psutil.Process()
    run_dir = tmp_path / "r"
    rundir.update_status(run_dir, state=rundir.RUNNING, pid=me.pid, create_time=me.create_time())
    t0 = time.time() - 1000
    events = rundir.EventWriter(run_dir / rundir.EVENTS)
    events.emit(rundir.EV_TRAIN, t=t0, step=7, loss=1.0)
    for i in range(1, 100):
        events.emit(rundir.EV_HEARTBEAT, t=t0 + 10 * i, step=7, work=70)
    events.emit(rundir.EV_HEARTBEAT, t=time.time(), step=7, work=70)
    events.close()
    reader = RunReader(run_dir)
    reader.poll()
    assert reader.state(stall_after=300) == rundir.STALLED
    rundir.update_status(run_dir, state=rundir.EVALUATING)
    events = rundir.EventWriter(run_dir / rundir.EVENTS)
    events.emit(rundir.EV_HEARTBEAT, step=7, work=71)  # evaluating: the step stands, the work goes on
    events.close()
    reader.poll()
    assert reader.state(stall_after=300) == rundir.EVALUATING


# ---------- run stop signals only processes proven to be the run's ----------

def test_stop_never_signals_a_stranger_on_a_pid_recorded_without_its_start(tmp_path):
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        run_dir = tmp_path / "bare"
        # a status with a pid and no start time (an old version's, or one written by hand): the pid is now
        # a stranger's
        rundir.update_status(run_dir, state=rundir.RUNNING, pid=stranger.pid, pgid=stranger.pid, sid=stranger.pid)
        with pytest.raises(KidconsoleError, match=f"pid {stranger.pid} lives but is not proven the run's"):
            stop_run(run_dir, timeout=2)
        time.sleep(0.5)
        assert stranger.poll() is None  # never signalled
        assert rundir.read_status(run_dir).get("stop_requested_at") is None
    finally:
        stranger.kill()
        stranger.wait()


def test_stop_signals_a_process_without_a_recorded_start_whose_command_names_the_run(tmp_path):
    run_dir = tmp_path / "bare"
    run_dir.mkdir()
    ours = subprocess.Popen([sys.executable, "-c", "import sys, time; time.sleep(60)", "--run-dir", str(run_dir)],
                            start_new_session=True)
    try:
        rundir.update_status(run_dir, state=rundir.RUNNING, pid=ours.pid, pgid=ours.pid, sid=ours.pid)
        report = stop_run(run_dir, timeout=10)
        assert report.terminated == [ours.pid] and not report.killed  # ended by the SIGTERM
        assert ours.poll() is not None and report.state == rundir.STOPPED
    finally:
        ours.kill()
        ours.wait()


def test_stop_in_the_moment_a_run_starts_waits_for_its_process_and_stops_it(tmp_path):
    # A run taken off the queue is "starting" before its supervisor's pid is recorded; a stop in that
    # moment said "no process of this host recorded: stop it where it runs" (seen once in CI).
    import threading

    from kidconsole.rundir.process import identity

    run_dir = tmp_path / "starting"
    rundir.update_status(run_dir, state=rundir.STARTING, host=socket.gethostname())
    started = []

    def start():
        time.sleep(1.0)  # the starter is slow to record the pid
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "--run-dir", str(run_dir)],
                                start_new_session=True)
        started.append(proc)
        rundir.update_status(run_dir, pid=proc.pid, pgid=proc.pid, sid=proc.pid, **identity(proc.pid))

    starter = threading.Thread(target=start)
    starter.start()
    try:
        report = stop_run(run_dir, timeout=10)
        starter.join()
        assert report.terminated == [started[0].pid] and report.state == rundir.STOPPED
        assert started[0].wait(10) is not None
    finally:
        starter.join()
        for proc in started:
            proc.kill()
            proc.wait()


def test_stop_of_a_run_that_never_recorded_its_process_says_it_is_still_starting(tmp_path, monkeypatch):
    from kidconsole.runs.kinds import local

    monkeypatch.setattr(local, "START_WAIT", 0.5)
    run_dir = tmp_path / "starting"
    rundir.update_status(run_dir, state=rundir.STARTING, host=socket.gethostname())
    with pytest.raises(KidconsoleError, match=r"starting.*no process recorded after 0.5 s"):
        stop_run(run_dir, timeout=10)


# ---------- a killed `run launch` ----------

KILLED_LAUNCH = """
import os, sys
from kidconsole import rundir
from kidconsole.runs.launch import launch_run
rundir.update_status = lambda *a, **k: os.kill(os.getpid(), 9)  # killed once the config is written
launch_run(sys.argv[1], runs_root=sys.argv[2], name="contested", trainer_module="fake_trainer")
"""


def test_a_killed_launch_leaves_nothing_in_the_way_of_its_name(run_config, tmp_path, fake_env):
    root = tmp_path / "runs"
    killed = subprocess.run([sys.executable, "-c", KILLED_LAUNCH, str(run_config), str(root)])
    assert killed.returncode == -signal.SIGKILL
    assert not (root / "contested").exists()
    run_dir = launch_run(run_config, runs_root=root, name="contested", trainer_module=FAKE)
    wait_for(lambda: rundir.read_status(run_dir).get("state") == rundir.FINISHED, 60)
    assert sorted(p.name for p in root.iterdir()) == ["contested"]  # the half-made one was removed


def test_a_name_taken_by_a_folder_that_is_no_run_says_so_and_does_not_offer_a_resume(run_config, tmp_path,
                                                                                    fake_env):
    root = tmp_path / "runs"
    (root / "leftover").mkdir(parents=True)
    (root / "leftover" / rundir.CONFIG).write_text("name: leftover\n")  # what an old launch left when killed
    with pytest.raises(KidconsoleError) as err:
        launch_run(run_config, runs_root=root, name="leftover", trainer_module=FAKE)
    assert "is not a run (no status.json" in str(err.value) and "run resume" not in str(err.value)
    # a run that can be resumed is offered its resume; one that cannot is not
    done = launch_run(run_config, runs_root=root, name="done", trainer_module=FAKE)
    wait_for(lambda: rundir.read_status(done).get("state") == rundir.FINISHED
             and not session_pids(rundir.read_status(done)["sid"]), 60)
    with pytest.raises(KidconsoleError, match="already exists: choose another --name$"):
        launch_run(run_config, runs_root=root, name="done", trainer_module=FAKE)
    rundir.update_status(done, state=rundir.STOPPED)
    _checkpointed(done)
    with pytest.raises(KidconsoleError, match=r"choose another --name, or `kidconsole run resume "):
        launch_run(run_config, runs_root=root, name="done", trainer_module=FAKE)
