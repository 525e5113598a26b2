"""Real subprocesses: detached launch, surviving the launcher's death, stop, resume, states."""

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from kidconsole import rundir
from kidconsole.errors import KidconsoleError
from kidconsole.runs import liveness
from kidconsole.runs.life import resume as resume_run, stop as stop_run
from kidconsole.runs.launch import launch_run, start_detached
from kidconsole.runs.reader import RunReader
from runs_helpers import FAKE, fake_command, session_pids, wait_for, TEST_TRAINERS

pytestmark = pytest.mark.slow


def start_fake(tmp_path, name="run", *args):
    run_dir = tmp_path / "runs" / name
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text("name: fake\n")
    rundir.update_status(run_dir, name=name, state=rundir.STARTING, gpus=[], trainer_module=FAKE)
    start_detached(run_dir, fake_command(run_dir, *args), [])
    return run_dir


def final_state(run_dir, timeout=30):
    return wait_for(lambda: rundir.read_status(run_dir).get("state") in rundir.FINAL_STATES
                    and not session_pids(rundir.read_status(run_dir)["sid"]) and RunReader(run_dir).state(), timeout)


def test_run_survives_the_death_of_the_launching_process_group(tmp_path, fake_env, run_config):
    fake_env.setenv("FAKE_STEPS", "60")
    code = ("import sys, time; from kidconsole.runs.launch import launch_run; "
            f"d = launch_run({str(run_config)!r}, runs_root={str(tmp_path / 'runs')!r}, name='survivor', "
            f"trainer_module={FAKE!r}); print(d, flush=True); time.sleep(60)")
    # the console stand-in: its own process group, killed whole like a lost SSH session
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True)
    run_dir = tmp_path / "runs" / "survivor"
    wait_for(lambda: parent.stdout.readline().strip() == str(run_dir), 60)
    os.killpg(parent.pid, signal.SIGKILL)
    parent.wait()
    status = rundir.read_status(run_dir)
    assert status["sid"] != os.getsid(0)  # its own session, not the test's
    assert final_state(run_dir, 90) == rundir.FINISHED
    status = rundir.read_status(run_dir)
    assert status["exit_code"] == 0 and status["command"][1:3] == ["-m", "accelerate.commands.launch"]
    assert "--cpu" in status["command"] and status["config_hash"] and status["version"]
    reader = RunReader(run_dir)
    reader.poll()
    assert reader.summary["step"] == 60 and len(reader.series["train/loss"]) == 60


def test_stop_through_accelerate_checkpoints_and_leaves_no_process(tmp_path, fake_env, run_config):
    fake_env.setenv("FAKE_STEPS", "100000")
    fake_env.setenv("FAKE_ORPHAN", "1")
    run_dir = launch_run(run_config, runs_root=tmp_path / "runs", name="stopme", trainer_module=FAKE)
    reader = RunReader(run_dir)
    wait_for(lambda: reader.poll() is not None and (reader.summary["step"] or 0) >= 5, 60)
    sid = rundir.read_status(run_dir)["sid"]
    assert len(session_pids(sid)) >= 4  # supervisor, launcher, trainer, the orphan
    assert stop_run(run_dir, timeout=30).state == rundir.STOPPED
    assert session_pids(sid) == []
    status = rundir.read_status(run_dir)
    assert status["exit_code"] == 0 and "killed_pids" not in status
    assert any(c["complete"] for c in reader.checkpoints())


def test_stop_kills_a_trainer_that_ignores_sigterm(tmp_path, fake_env):
    fake_env.setenv("FAKE_STEPS", "100000")
    fake_env.setenv("FAKE_IGNORE_TERM", "1")
    run_dir = start_fake(tmp_path, "stubborn")
    wait_for(lambda: rundir.read_status(run_dir).get("state") == rundir.RUNNING)
    sid = rundir.read_status(run_dir)["sid"]
    t0 = time.monotonic()
    assert stop_run(run_dir, timeout=1.0).state == rundir.STOPPED
    assert time.monotonic() - t0 < 15
    assert session_pids(sid) == []
    assert rundir.read_status(run_dir)["killed_pids"]


def test_crash_is_failed_with_exit_code_and_reason(tmp_path, fake_env):
    fake_env.setenv("FAKE_CRASH_AT", "7")
    run_dir = start_fake(tmp_path, "crash")
    assert final_state(run_dir) == rundir.FAILED
    status = rundir.read_status(run_dir)
    assert status["exit_code"] == 1
    assert "fake failure at step 7" in status["error"]
    reader = RunReader(run_dir)
    reader.poll()
    assert any("RuntimeError" in ln for ln in reader.log_tail(20))
    assert reader.series["train/loss"].last[0] == 6


def test_finished_run_is_finished(tmp_path, fake_env):
    run_dir = start_fake(tmp_path, "done")
    assert final_state(run_dir) == rundir.FINISHED
    assert rundir.read_status(run_dir)["exit_code"] == 0


def test_killed_run_without_final_state_is_interrupted(tmp_path, fake_env):
    fake_env.setenv("FAKE_STEPS", "100000")
    run_dir = start_fake(tmp_path, "killed")
    reader = RunReader(run_dir)
    wait_for(lambda: reader.state() == rundir.RUNNING)
    status = rundir.read_status(run_dir)
    os.killpg(status["pgid"], signal.SIGKILL)  # supervisor and all: nobody writes a final state
    wait_for(lambda: not session_pids(status["sid"]))
    assert rundir.read_status(run_dir)["state"] == rundir.RUNNING
    assert reader.state() == rundir.INTERRUPTED


def test_reused_pid_is_not_mistaken_for_the_run(tmp_path):
    run_dir = tmp_path / "old"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        created = psutil.Process(other.pid).create_time()
        # the recorded process had this pid but started earlier: the live one is someone else
        rundir.update_status(run_dir, state=rundir.RUNNING, pid=other.pid, pgid=other.pid, sid=other.pid,
                             create_time=created - 100)
        assert RunReader(run_dir).state() == rundir.INTERRUPTED
        assert stop_run(run_dir, timeout=1).state == rundir.INTERRUPTED
        assert other.poll() is None  # stop never touches the stranger
        rundir.update_status(run_dir, create_time=created)
        assert RunReader(run_dir).state() == rundir.RUNNING
    finally:
        other.kill()
        other.wait()


def test_resume_continues_from_the_newest_checkpoint_with_history(tmp_path, fake_env):
    fake_env.setenv("FAKE_STEPS", "100000")
    run_dir = start_fake(tmp_path, "again")
    reader = RunReader(run_dir)
    wait_for(lambda: reader.poll() is not None and (reader.summary["step"] or 0) >= 12)
    assert stop_run(run_dir, timeout=30).state == rundir.STOPPED
    stopped_at = rundir.read_status(run_dir)["step"]
    fake_env.setenv("FAKE_STEPS", str(stopped_at + 15))
    with pytest.raises(KidconsoleError, match="still running"):
        rundir.update_status(run_dir, pid=os.getpid(), **liveness.identity(os.getpid()))
        resume_run(run_dir, trainer_modules=TEST_TRAINERS)
    rundir.update_status(run_dir, pid=12345678)
    resume_run(run_dir, trainer_modules=TEST_TRAINERS)  # through accelerate: resume rebuilds the launch command
    assert final_state(run_dir, 90) == rundir.FINISHED
    reader.poll()
    steps = reader.series["train/loss"].x
    assert steps[-1] == stopped_at + 15 and list(steps) == list(range(1, stopped_at + 16))
    status = rundir.read_status(run_dir)
    assert status["resumes"] == 1 and status["resumed_from"].startswith("step-")
    assert "--resume" in status["command"]


def test_resume_refuses_a_run_without_checkpoint(tmp_path):
    run_dir = tmp_path / "empty"
    (run_dir).mkdir()
    (run_dir / "config.yaml").write_text("name: x\n")
    rundir.update_status(run_dir, state=rundir.FAILED)
    with pytest.raises(KidconsoleError, match="no complete checkpoint"):
        resume_run(run_dir, trainer_modules=TEST_TRAINERS)
