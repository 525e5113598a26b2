"""One checkpoint rule for trainer, launcher, reader and tests: named by step, complete only with
the COMPLETE marker, never a dot-folder, the newest by step."""

import os
import time

import pytest

from kidconsole import rundir
from kidconsole.cli import main
from kidconsole.errors import KidconsoleError
from kidconsole.runs.life import resume as resume_run
from kidconsole.runs.reader import RunReader
from runs_helpers import FAKE, wait_for, TEST_TRAINERS


def make_checkpoint(root, step, *, complete=True, tmp=False, mtime=None):
    folder = root / (f".tmp-{rundir.checkpoint_name(step)}" if tmp else rundir.checkpoint_name(step))
    folder.mkdir(parents=True)
    (folder / "state.txt").write_text(str(step))
    if complete:
        (folder / rundir.COMPLETE).write_text("")
        if mtime is not None:
            os.utime(folder / rundir.COMPLETE, (mtime, mtime))
    return folder


def stopped_run(tmp_path, name="run"):
    run_dir = tmp_path / "runs" / name
    run_dir.mkdir(parents=True)
    (run_dir / rundir.CONFIG).write_text("name: fake\n")
    rundir.update_status(run_dir, name=name, state=rundir.STOPPED, gpus=[], trainer_module=FAKE)
    return run_dir


def test_a_write_killed_at_the_rename_is_never_the_newest(tmp_path):
    root = tmp_path / rundir.CHECKPOINTS
    make_checkpoint(root, 10)
    make_checkpoint(root, 20, mtime=time.time() + 60, tmp=True)  # marker written, rename never happened
    assert rundir.newest_checkpoint(root).name == "step-00000010"
    assert [p.name for p in rundir.complete_checkpoints(root)] == ["step-00000010"]


def test_the_newest_checkpoint_is_the_highest_step_not_the_newest_marker(tmp_path):
    root = tmp_path / rundir.CHECKPOINTS
    make_checkpoint(root, 20, mtime=time.time() - 3600)
    make_checkpoint(root, 10, mtime=time.time())  # restored from a backup: a newer mtime, an older step
    make_checkpoint(root, 30, complete=False)
    assert rundir.newest_checkpoint(root).name == "step-00000020"


def test_checkpoint_names_round_trip_and_foreign_folders_are_not_checkpoints(tmp_path):
    assert rundir.checkpoint_name(417) == "step-00000417"
    assert rundir.checkpoint_step("step-00000417") == 417 and rundir.checkpoint_step("step-000500") == 500
    for name in (".tmp-step-00000417", "step-", "step-12x", "best", ".step-00000001"):
        assert rundir.checkpoint_step(name) is None
    root = tmp_path / rundir.CHECKPOINTS
    make_checkpoint(root, 5)
    (root / "notes").mkdir()
    (root / ".hidden").mkdir()
    (root / ".hidden" / rundir.COMPLETE).write_text("")
    assert [p.name for p in rundir.complete_checkpoints(root)] == ["step-00000005"]
    assert rundir.newest_checkpoint(tmp_path / "missing") is None


def test_the_reader_lists_no_unfinished_write(tmp_path):
    run_dir = tmp_path / "run"
    root = run_dir / rundir.CHECKPOINTS
    make_checkpoint(root, 10)
    make_checkpoint(root, 20, tmp=True)
    make_checkpoint(root, 30, complete=False)
    rundir.update_status(run_dir, state=rundir.RUNNING)
    listed = [(c["name"], c["step"], c["complete"]) for c in RunReader(run_dir).checkpoints()]
    assert listed == [("step-00000010", 10, True), ("step-00000030", 30, False)]


def test_resume_refuses_a_run_whose_only_checkpoint_is_an_unfinished_write(tmp_path, capsys):
    run_dir = stopped_run(tmp_path)
    make_checkpoint(run_dir / rundir.CHECKPOINTS, 417, tmp=True)
    with pytest.raises(KidconsoleError, match=r"no complete checkpoint.*\.tmp-step-00000417"):
        resume_run(run_dir, trainer_modules=TEST_TRAINERS)
    assert main(["run", "resume", str(run_dir)]) == 2
    assert "no complete checkpoint to resume from (.tmp-step-00000417" in capsys.readouterr().err
    assert rundir.read_status(run_dir)["state"] == rundir.STOPPED  # nothing was started


@pytest.mark.slow
def test_resume_reports_the_checkpoint_the_trainer_takes(tmp_path, fake_env):
    fake_env.setenv("FAKE_STEPS", "25")
    run_dir = stopped_run(tmp_path)
    root = run_dir / rundir.CHECKPOINTS
    make_checkpoint(root, 20, mtime=time.time() - 3600)
    make_checkpoint(root, 10, mtime=time.time())
    make_checkpoint(root, 24, tmp=True, mtime=time.time() + 60)
    resume_run(run_dir, trainer_modules=TEST_TRAINERS)
    assert rundir.read_status(run_dir)["resumed_from"] == "step-00000020"
    wait_for(lambda: rundir.read_status(run_dir).get("state") == rundir.FINISHED, 90)
    reader = RunReader(run_dir)
    reader.load_all()
    assert reader.series["train/loss"].x[0] == 21  # the trainer continued from the same checkpoint
