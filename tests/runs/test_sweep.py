"""Sweeps: grid expansion, validation through the config schema, one queued run per point."""

from __future__ import annotations

import pytest

from kidconsole import rundir
from kidconsole.cli import main
from kidconsole.config import read_run_config
from kidconsole.errors import KidconsoleError
from kidconsole.runs import queue
from kidconsole.runs.sweep import expand_grid, launch_sweep

from runs_helpers import FAKE, hold_slot, release


def test_the_grid_expands_to_every_combination_last_key_fastest():
    assert expand_grid(["lora.r=16,32", "phases.0.lr=5e-4,3e-4"]) == [
        ["lora.r=16", "phases.0.lr=5e-4"], ["lora.r=16", "phases.0.lr=3e-4"],
        ["lora.r=32", "phases.0.lr=5e-4"], ["lora.r=32", "phases.0.lr=3e-4"],
    ]
    assert expand_grid(["lora.r=8"]) == [["lora.r=8"]]


@pytest.mark.parametrize("grid, why", [
    (["lora.r"], "expected KEY=V1,V2"), (["lora.r=16,,32"], "expected KEY=V1,V2"),
    (["lora.r=16", "lora.r=32"], "already varied"), (["lora.r=16,16"], "repeated"), ([], "at least one --grid"),
])
def test_a_malformed_grid_is_a_clear_error(grid, why):
    with pytest.raises(KidconsoleError, match=why):
        expand_grid(grid)


def test_a_sweep_queues_one_run_per_point_with_its_sweep_id(run_config, tmp_path, fake_env):
    root = tmp_path / "runs"
    holder = hold_slot(root)  # the one CPU slot is taken: every point waits
    sid, runs = launch_sweep(run_config, ["lora.r=16,32", "phases.0.lr=5e-4,3e-4"], overrides=["lora.alpha=64"],
                             name="rank", runs_root=root, trainer_module=FAKE)
    assert sid.startswith("rank-") and [r.name for r in runs] == [f"{sid}-0{i}" for i in range(1, 5)]
    assert queue.read_queue(root)["order"] == [r.name for r in runs]
    got = []
    for r in runs:
        s = rundir.read_status(r)
        assert s["state"] == rundir.QUEUED and s["sweep"] == sid
        cfg = read_run_config(r)
        assert cfg.lora.alpha == 64
        got.append((cfg.lora.r, cfg.phases[0].lr, s["sweep_point"]))
    assert got == [(16, 5e-4, ["lora.r=16", "phases.0.lr=5e-4"]), (16, 3e-4, ["lora.r=16", "phases.0.lr=3e-4"]),
                   (32, 5e-4, ["lora.r=32", "phases.0.lr=5e-4"]), (32, 3e-4, ["lora.r=32", "phases.0.lr=3e-4"])]
    for r in runs:
        queue.cancel(r)
    release(holder)


def test_a_point_the_schema_refuses_names_its_key_and_queues_nothing(run_config, tmp_path, capsys):
    root = tmp_path / "runs"
    assert main(["run", "sweep", str(run_config), "--grid", "lora.r=16,-1", "--runs-root", str(root)]) == 2
    assert "lora.r" in capsys.readouterr().err
    assert main(["run", "sweep", str(run_config), "--grid", "lora.rank=16,32", "--runs-root", str(root)]) == 2
    assert "lora.rank" in capsys.readouterr().err
    assert not root.exists() or not any(root.iterdir())


@pytest.mark.parametrize("flags", [["--slurm"], ["--machines", "2", "--machine-rank", "0"]])
def test_the_queue_is_refused_with_slurm_or_several_machines(run_config, tmp_path, capsys, flags):
    root = tmp_path / "runs"
    assert main(["run", "launch", str(run_config), "--gpus", "auto", "--name", "q", "--runs-root", str(root),
                 *flags]) == 2
    assert "--gpus auto" in capsys.readouterr().err
    assert not root.exists() or not any(root.iterdir())


def test_the_cli_sweeps_lists_the_queue_moves_and_cancels(run_config, tmp_path, fake_env, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    root = tmp_path / "runs"
    holder = hold_slot(root)
    assert main(["run", "sweep", str(run_config), "--grid", "lora.r=16,32", "--name", "s", "--gpus", "auto",
                 "--runs-root", str(root), "--trainer", FAKE]) == 0
    out = capsys.readouterr().out
    assert "2 runs" in out and "at #1: waits for a CPU slot (0 of 1 free)" in out
    first, second = (r for r in queue.queued_runs(root))
    assert main(["run", "launch", str(run_config), "--gpus", "auto", "--name", "solo", "--runs-root", str(root),
                 "--trainer", FAKE]) == 0
    assert "queued solo at #3" in capsys.readouterr().out
    assert main(["run", "queue", "move", "solo", "1", "--runs", str(root)]) == 0
    assert "solo: now #1" in capsys.readouterr().out
    assert main(["run", "queue", "ls", "--runs-root", str(root)]) == 0
    out = capsys.readouterr().out
    assert out.index("solo") < out.index(first.name) < out.index(second.name)
    assert main(["run", "ls", "--runs", str(root)]) == 0
    assert "#1 waits" in capsys.readouterr().out
    assert main(["run", "cancel", "solo", "--runs", str(root)]) == 0
    assert main(["run", "stop", first.name, "--runs", str(root)]) == 0
    assert main(["run", "cancel", second.name, "--runs", str(root)]) == 0
    assert main(["run", "cancel", second.name, "--runs", str(root)]) == 2
    assert "not queued" in capsys.readouterr().err
    assert queue.read_queue(root)["order"] == []
    release(holder)
    assert main(["run", "queue", "slots", "--cpu", "3", "--runs-root", str(root)]) == 0
    assert queue.read_queue(root)["cpu_slots"] == 3


def test_run_ls_lists_the_runs_when_the_queue_file_is_broken(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    root = tmp_path / "runs"
    rundir.update_status(root / "alpha", name="alpha", state=rundir.FINISHED)
    (root / rundir.QUEUE).write_text("{not json")
    assert main(["run", "ls", "--runs", str(root)]) == 0
    out, err = capsys.readouterr()
    assert "alpha" in out and "queue.json: unreadable" in err
