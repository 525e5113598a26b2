"""Fault injection on checkpoints: a checkpoint sealed ``COMPLETE`` whose files are damaged (a crash before
the data reached the disk, a bad copy) must not block a resume for good."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from kidconsole import rundir
from trainers.train import main as train_main


def _train(config: Path, run: Path, *extra: str) -> int:
    return train_main(["--config", str(config), "--run-dir", str(run), *extra])


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model, tones, tiny_run_config):
    """A finished tiny run with two complete checkpoints (steps 2 and 5)."""
    import yaml

    folder = tmp_path_factory.mktemp("trained")
    config = folder / "run.yaml"
    config.write_text(yaml.safe_dump(tiny_run_config(tiny_model, tones, data__test_manifest=None,
                                                     train__eval_every=2, train__keep_last=3)))
    run = folder / "run"
    assert _train(config, run) == 0
    names = [p.name for p in rundir.complete_checkpoints(run / rundir.CHECKPOINTS)]
    assert names == ["step-00000002", "step-00000005"], names
    return run


@pytest.mark.parametrize("damaged", ["model.safetensors", "optimizer.bin", "trainer_state.json"])
def test_a_damaged_newest_checkpoint_is_named_and_the_previous_one_resumes(trained, tmp_path, rd, damaged, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    newest, previous = rundir.complete_checkpoints(run / rundir.CHECKPOINTS)[::-1]
    bad = newest / damaged
    with open(bad, "r+b") as fh:  # cut short, as a crash before the data reached the disk leaves it
        fh.truncate(os.path.getsize(bad) // 3)
    assert _train(run / rundir.CONFIG, run, "--resume") == 0
    status = rd.status(run)
    assert status["state"] == "finished", status
    [warning] = [e for e in rd.events(run, "warning") if e["what"] == rundir.CHECKPOINT_DAMAGED]
    assert str(bad) in warning["message"] and previous.name in warning["message"], warning
    assert f"{bad}" in capsys.readouterr().out  # and on stdout, the run's log
    start = rd.events(run, "start")[-1]
    assert start["resumed_from"] == str(previous) and start["step"] == 2
    assert status["resumed_from"] == previous.name


def test_a_run_whose_every_checkpoint_is_damaged_fails_naming_each(trained, tmp_path, rd):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    for ckpt in rundir.complete_checkpoints(run / rundir.CHECKPOINTS):
        (ckpt / "model.safetensors").write_bytes(b"\0" * 10)
    assert _train(run / rundir.CONFIG, run, "--resume") != 0
    error = rd.status(run)["error"]
    for ckpt in rundir.complete_checkpoints(run / rundir.CHECKPOINTS):
        assert str(ckpt / "model.safetensors") in error, error


def test_a_checkpoint_is_on_disk_before_it_is_sealed_and_its_rename_after(tmp_path, monkeypatch):
    """Every file of the checkpoint is fsynced before COMPLETE is written (a crash cannot leave a sealed
    checkpoint whose data never reached the disk), COMPLETE and the folder too, and the checkpoints folder
    after the rename (the rename itself survives a crash)."""
    root = tmp_path / rundir.CHECKPOINTS
    tmp = rundir.tmp_checkpoint(root, "step-00000007")
    (tmp / "sub").mkdir(parents=True)
    for name in ("model.safetensors", "optimizer.bin", "sub/extra.bin"):
        (tmp / name).write_bytes(b"x" * 100)
    synced: list[tuple[str, bool]] = []  # (path, was COMPLETE there yet)
    real = os.fsync

    def spy(fd):
        path = os.readlink(f"/proc/self/fd/{fd}")
        synced.append((path, (tmp / rundir.COMPLETE).exists() or (root / "step-00000007" / rundir.COMPLETE).exists()))
        return real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    final = rundir.seal_checkpoint(tmp, root / "step-00000007")
    before = {p for p, sealed in synced if not sealed}
    for name in ("model.safetensors", "optimizer.bin", "sub/extra.bin", "sub", ""):
        assert str(tmp / name).rstrip("/") in before, (name, synced)
    assert synced[-1][0] == str(root), synced  # the rename made durable last
    assert str(final / rundir.COMPLETE) in {p for p, _ in synced} or str(tmp / rundir.COMPLETE) in {p for p, _ in synced}
