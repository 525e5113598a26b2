import json

import pytest

from kidconsole import rundir
from kidconsole.cli import main


def test_run_ls_and_logs_show_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # a table wider than the default 80 columns
    run = tmp_path / "runs" / "alpha"
    rundir.update_status(run, name="alpha", state=rundir.FINISHED, step=20, total_steps=20, gpus=[0])
    (run / rundir.EVENTS).write_text(json.dumps({"t": 1.0, "kind": "eval", "step": 20, "per": 0.25}) + "\n")
    (run / rundir.STDOUT).write_text("hello from the trainer\n")
    assert main(["run", "ls", "--runs", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "alpha" in out and "finished" in out and "25.00" in out
    assert main(["run", "logs", "alpha", "--runs", str(tmp_path / "runs")]) == 0
    assert "hello from the trainer" in capsys.readouterr().out


def test_unknown_run_and_bad_gpus_are_clear_errors(tmp_path, capsys, run_config):
    assert main(["run", "stop", "nope", "--runs", str(tmp_path)]) == 2
    assert "no such run directory" in capsys.readouterr().err
    assert main(["run", "launch", str(run_config), "--gpus", "x1", "--runs-root", str(tmp_path)]) == 2
    assert "--gpus x1" in capsys.readouterr().err
    assert main(["run", "launch", str(run_config), "--set", "lora.r=-1", "--runs-root", str(tmp_path)]) == 2
    assert "lora.r" in capsys.readouterr().err


def test_run_ls_lists_every_run_when_one_has_a_poisoned_events_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    for name in ("good", "poisoned"):
        run = tmp_path / "runs" / name
        rundir.update_status(run, name=name, state=rundir.FINISHED, step=20, total_steps=20)
        (run / rundir.EVENTS).write_text(json.dumps({"t": 1.0, "kind": "eval", "step": 20, "per": 0.25}) + "\n")
    (tmp_path / "runs" / "events-only").mkdir()  # no status.json: its start time is its first event's
    with open(tmp_path / "runs" / "events-only" / rundir.EVENTS, "w") as fh:
        fh.write('{"t": ' + "9" * 400 + ', "kind": "start", "step": 0}\n')
    with open(tmp_path / "runs" / "poisoned" / rundir.EVENTS, "a") as fh:
        fh.write('{"t": 2.0, "kind": "train", "step": 21, "loss": ' + "1" * 400 + "}\n")
    assert main(["run", "ls", "--runs", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "good" in out and "poisoned" in out and "events-only" in out


LONG = "full-r32-lr1e-4-warmup2k-seed3"


def _ls_runs(root):
    for name, state, share in ((LONG, rundir.STOPPED, 0.31), ("r16", rundir.FINISHED, 0.05)):
        run = root / name
        rundir.update_status(run, name=name, state=state, step=2000, total_steps=6000, gpus=[0, 1], phase=2)
        events = [{"t": 1.0, "kind": "train", "step": 2000, "loss": 0.5, "samples_per_s": 55.0, "samples": 16000},
                  {"t": 2.0, "kind": "eval", "step": 1000, "per": 0.3, "eval_seconds": 40.0, "eval_share": share},
                  {"t": 3.0, "kind": "eval", "step": 2000, "per": 0.25, "eval_seconds": 42.0, "eval_share": share}]
        (run / rundir.EVENTS).write_text("".join(json.dumps(e) + "\n" for e in events))
    return root


def test_run_ls_at_80_columns_never_cuts_names_or_states_and_drops_minor_columns(tmp_path, capsys, monkeypatch):
    root = _ls_runs(tmp_path / "runs")
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["run", "ls", "--runs", str(root)]) == 0
    narrow = capsys.readouterr().out
    assert max(map(len, narrow.splitlines())) <= 80
    assert LONG in narrow and "stopped" in narrow and "finished" in narrow and "…" not in narrow
    assert "share" in narrow and "31%!" in narrow and "train.eval_every" in narrow
    assert "GPUs" not in narrow and "--wide" in narrow
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["run", "ls", "--runs", str(root)]) == 0
    wide = capsys.readouterr().out
    assert "GPUs" in wide and "samples/s" in wide and "0,1" in wide and "--wide" not in wide


def test_run_ls_wide_shows_every_column_and_json_is_for_scripts(tmp_path, capsys, monkeypatch):
    root = _ls_runs(tmp_path / "runs")
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["run", "ls", "--wide", "--runs", str(root)]) == 0
    out = capsys.readouterr().out
    assert all(col in out for col in ("GPUs", "samples/s", "updated", "left", "phase"))
    assert main(["run", "ls", "--json", "--runs", str(root)]) == 0
    recs = {r["run"]: r for r in json.loads(capsys.readouterr().out)}
    assert recs[LONG]["state"] == "stopped" and recs[LONG]["eval_share"] == 0.31
    # 4,000 steps left at one evaluation every 1,000 steps: 4 more of 42 s
    assert recs[LONG]["eval_left_s"] == 168.0 and recs[LONG]["best_per_step"] == 2000
    assert recs["r16"]["gpus"] == [0, 1]


def test_the_eval_share_threshold_is_a_global_flag(tmp_path, capsys, monkeypatch):
    root = _ls_runs(tmp_path / "runs")
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["--eval-share-warn", "0.5", "run", "ls", "--runs", str(root)]) == 0
    out = capsys.readouterr().out
    assert "31%" in out and "31%!" not in out and "train.eval_every" not in out
    with pytest.raises(SystemExit):
        main(["--eval-share-warn", "20", "run", "ls"])
    assert "between 0 and 1" in capsys.readouterr().err
