import json

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
