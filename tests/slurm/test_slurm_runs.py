"""Runs as jobs of a real Slurm (the session's single-node cluster): submit, watch, stop, requeue, resume."""

import os
import shlex
import subprocess
import time

import pytest

from kidconsole import rundir
from kidconsole.cli import main
from kidconsole.runs.slurm import SlurmOptions, job_script

WAIT = 300  # seconds: a job's start imports torch on two busy cores


def _ls(capsys, root) -> str:
    assert main(["run", "ls", "--runs", str(root)]) == 0
    return capsys.readouterr().out


def _until(pred, timeout, what, run=None, job=None):
    """Wait for ``pred``; on a timeout, say what for, with the run's log and Slurm's view of the job then."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if (got := pred()):
            return got
        time.sleep(0.5)
    seen = subprocess.run(["scontrol", "show", "job", str(job)], capture_output=True, text=True).stdout \
        if job is not None else ""
    raise AssertionError(f"timed out waiting for {what}" + (f": {_log(run)}" if run is not None else "") + seen)


def _events(run, kind):
    import json

    path = run / rundir.EVENTS
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return [e for e in map(json.loads, filter(None, lines)) if e["kind"] == kind]


def _launch(capsys, config, root, name, *extra):
    assert main(["run", "launch", str(config), "--slurm", "--name", name, "--runs-root", str(root), "--grace", "30",
                 *extra]) == 0, capsys.readouterr()
    assert "submitted" in capsys.readouterr().out
    run = root / name
    return run, rundir.read_status(run)["slurm_job_id"]


def _log(run) -> str:
    path = run / rundir.STDOUT
    return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log yet)"


def _card(root):
    from kidconsole.tui.watcher import Watcher

    (view,) = Watcher([str(root)], system=False).poll_once().values()
    return view


def test_each_node_expands_its_own_rank_in_the_batch_script(tmp_path):
    script = job_script(tmp_path / "run", "two", SlurmOptions(nodes=2, gpus_per_node=4, partition="gpu",
                                                             time="1-00:00:00", extra=("--qos=high",)),
                        python="/bin/echo")
    assert "#SBATCH --nodes=2" in script and "#SBATCH --gpus-per-node=4" in script
    assert "#SBATCH --signal=TERM@120" in script and "#SBATCH --requeue" in script and "#SBATCH --qos=high" in script
    srun = next(line for line in script.splitlines() if line.startswith("srun "))
    words = shlex.split(srun)
    inner = words[words.index("-c") + 1]
    assert "$SLURM_NODEID" in srun and "$SLURM_NODEID" in inner  # not expanded by the batch shell
    env = {**os.environ, "SLURM_NODEID": "1", "KIDCONSOLE_MAIN_ADDR": "node-a", "KIDCONSOLE_MAIN_PORT": "23456"}
    out = subprocess.run(["bash", "-c", inner], env=env, capture_output=True, text=True, check=True).stdout
    assert "--machine-rank 1 --" in out
    assert "--num_machines 2 --machine_rank 1 --main_process_ip node-a --main_process_port 23456" in out
    assert "--num_processes 8" in out and "--resume" not in out
    out = subprocess.run(["bash", "-c", inner], env={**env, "KIDCONSOLE_RESUME": "1"}, capture_output=True,
                         text=True, check=True).stdout
    assert out.rstrip().endswith("--resume")


@pytest.mark.slow
def test_a_submitted_run_goes_pending_running_completed(runs_root, tiny_run, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    root = runs_root
    # 30 epochs: long enough to be seen running between two polls (2 epochs ended within 9 s, unseen)
    run, job = _launch(capsys, tiny_run(epochs=30), root, "queued", "--sbatch-arg=--begin=now+8")
    assert (run / rundir.JOB_SCRIPT).is_file()
    out = _ls(capsys, root)
    assert "pending" in out and f"job {job} PENDING (BeginTime)" in out
    view = _card(root)  # the console's card of the run: the same state, the job at its bottom
    assert view.state == "pending" and view.where == f"job {job} PENDING (BeginTime)"
    _until(lambda: "running" in (o := _ls(capsys, root)) and f"job {job} RUNNING on" in o, WAIT, "RUNNING",
           run, job)
    assert _until(lambda: (v := _card(root)).state == "running" and v.where.startswith(f"job {job} RUNNING on ")
                  and v, 30, "the card's RUNNING")
    _until(lambda: "finished" in (o := _ls(capsys, root)) and f"job {job} COMPLETED" in o, WAIT,
           "COMPLETED", run, job)
    st = rundir.read_status(run)
    assert st["state"] == "finished" and st["slurm_hosts"] and st["slurm_restarts"] == 0


@pytest.mark.slow
def test_run_stop_ends_the_job_with_a_checkpoint_and_resume_resubmits(runs_root, tiny_run, capsys):
    root = runs_root
    run, job = _launch(capsys, tiny_run(epochs=40), root, "stopme")
    _until(lambda: any(e["step"] >= 3 for e in _events(run, "train")), WAIT, "step 3", run)
    assert main(["run", "stop", str(run), "--timeout", "120"]) == 0
    assert "stopped" in capsys.readouterr().out
    st = rundir.read_status(run)
    assert st["state"] == "stopped" and st["stop_requested_at"], _log(run)
    ckpt = rundir.newest_checkpoint(run / rundir.CHECKPOINTS)
    assert ckpt is not None and ckpt.name == f"step-{st['step']:08d}"
    # a stop asked for by `run stop` is not requeued: the job is over
    _until(lambda: "COMPLETED" in subprocess.run(["scontrol", "show", "job", job], capture_output=True,
                                                 text=True).stdout, 60, "the job to complete")
    assert main(["run", "resume", str(run)]) == 0
    new = rundir.read_status(run)["slurm_job_id"]
    assert new != job and f"Slurm job {new}" in capsys.readouterr().out
    _until(lambda: _events(run, "start")[1:], WAIT, "the resumed start", run)
    assert _events(run, "start")[-1]["resumed_from"].endswith(ckpt.name)
    assert main(["run", "stop", str(run), "--timeout", "120"]) == 0  # the test need not train 40 epochs
    capsys.readouterr()


@pytest.mark.slow
def test_a_requeued_job_and_a_signalled_job_resume_from_their_checkpoint(runs_root, tiny_run, capsys):
    root = runs_root
    # long enough that the signal below still finds it training (a run of 8 epochs ended before it)
    run, job = _launch(capsys, tiny_run(epochs=30), root, "requeued")
    _until(lambda: any(e["step"] >= 3 for e in _events(run, "train")), WAIT, "step 3", run)
    # as an administrator (or a preemption) requeues it: the trainer checkpoints on SIGTERM, the job runs again
    subprocess.run(["scontrol", "requeue", job], check=True, capture_output=True)
    _until(lambda: len(_events(run, "start")) >= 2, WAIT, "the requeued start", run)
    first = _events(run, "start")[-1]
    assert first["resumed_from"] and first["step"] >= 3
    # Slurm's own signal before a time limit (--signal=TERM@grace), here sent by hand: the script requeues
    at = _events(run, "train")[-1]["step"]
    _until(lambda: any(e["step"] >= at + 2 for e in _events(run, "train")), WAIT, "two more steps", run)
    subprocess.run(["scancel", "--signal=TERM", job], check=True, capture_output=True)
    _until(lambda: len(_events(run, "start")) >= 3, WAIT, "the start after the signal", run)
    assert _events(run, "start")[-1]["step"] > first["step"]
    _until(lambda: rundir.read_status(run).get("state") == "finished"
           and "COMPLETED" in subprocess.run(["squeue", "-h", "--states=all", "-j", job, "-o", "%T"],
                                             capture_output=True, text=True).stdout, WAIT, "finished", run)
    st = rundir.read_status(run)
    assert st["slurm_restarts"] == 2 and st["slurm_job_id"] == job
    assert [e["state"] for e in _events(run, "end")] == ["stopped", "stopped", "finished"]
