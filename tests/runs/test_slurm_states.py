"""A Slurm run's state: the job's queue state merged with the run's own (status, heartbeat)."""

from kidconsole import rundir
from kidconsole.runs.slurm import Job, merge_state


def test_a_queued_job_is_pending_whatever_the_last_attempt_wrote():
    for state in (rundir.STARTING, rundir.STOPPED, rundir.STALLED):
        assert merge_state(state, Job("7", "PENDING", "Priority")) == rundir.PENDING
    assert merge_state(rundir.STOPPED, Job("7", "REQUEUED")) == rundir.PENDING


def test_a_running_job_shows_the_runs_own_heartbeat_state():
    for state in (rundir.RUNNING, rundir.EVALUATING, rundir.STALLED):
        assert merge_state(state, Job("7", "RUNNING")) == state


def test_a_job_that_ended_under_a_live_run_is_interrupted():
    for slurm_state in ("TIMEOUT", "PREEMPTED", "NODE_FAIL", "CANCELLED", "FAILED"):
        assert merge_state(rundir.RUNNING, Job("7", slurm_state)) == rundir.INTERRUPTED
    assert merge_state(rundir.STOPPED, Job("7", "COMPLETED")) == rundir.STOPPED
    assert merge_state(rundir.FINISHED, Job("7", "COMPLETED")) == rundir.FINISHED


def test_a_job_slurm_forgot_leaves_the_runs_state():
    assert merge_state(rundir.RUNNING, None) == rundir.RUNNING


def test_run_ls_names_the_host_of_a_run_elsewhere(tmp_path, capsys, monkeypatch):
    from kidconsole.cli import main

    monkeypatch.setenv("COLUMNS", "200")
    rundir.update_status(tmp_path / "here", name="here", state=rundir.FINISHED)
    rundir.update_status(tmp_path / "there", name="there", state=rundir.FINISHED, host="gpu-node-7")
    assert main(["run", "ls", "--runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "where" in out and "gpu-node-7" in out
