"""The command follows its own flags: a global flag reaches every subcommand that takes it, wherever it
is written, and every long command takes the same ``--no-progress``."""

from __future__ import annotations

import pytest

from kidconsole import rundir
from kidconsole.cli import main, parse_args

RUN_ACTIONS = {"launch": ["configs/demo_lora.yaml"], "ls": [], "logs": ["r"], "stop": ["r"], "resume": ["r"]}
LONG_COMMANDS = {"corpus index": ["corpus", "index", "ROOT", "-o", "m.jsonl"],
                 "subset build": ["subset", "build", "m.jsonl", "-o", "out"],
                 "g2p": ["g2p", "--file", "f.txt"], "demo": ["demo"]}


@pytest.mark.parametrize("action", RUN_ACTIONS)
def test_the_runs_flag_reaches_every_run_subcommand_before_or_after_its_name(action):
    extra = RUN_ACTIONS[action]
    assert parse_args(["--runs", "A", "run", action, *extra]).runs == ["A"]
    assert parse_args(["run", action, *extra, "--runs", "A"]).runs == ["A"]
    assert parse_args(["--runs", "A", "run", action, *extra, "--runs", "B"]).runs == ["A", "B"]
    assert parse_args(["run", action, *extra]).runs is None  # the default roots apply


def test_the_console_takes_the_runs_flag():
    args = parse_args(["--runs", "A", "--runs", "B"])
    assert args.command is None and args.runs == ["A", "B"]


def test_runs_before_run_ls_lists_the_runs_of_that_root(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)  # no ./runs here: the default root is empty
    rundir.update_status(tmp_path / "elsewhere" / "alpha", name="alpha", state=rundir.FINISHED, step=1)
    assert main(["--runs", str(tmp_path / "elsewhere"), "run", "ls"]) == 0
    out = capsys.readouterr().out
    assert "alpha" in out and "no runs under" not in out


@pytest.mark.parametrize("command", LONG_COMMANDS)
def test_every_long_command_takes_no_progress(command):
    argv = LONG_COMMANDS[command]
    assert parse_args([*argv, "--no-progress"]).no_progress is True
    assert parse_args(argv).no_progress is False


@pytest.mark.parametrize("flags", [["--int8", "--per-channel", "--manifest", "m.jsonl", "--threads", "2"],
                                   ["--onnx", "--threads", "0"], ["--onnx"]])
def test_export_hands_every_flag_to_the_export_job_as_given(flags):
    from kidconsole.cli import as_argv
    from trainers.export_job import parser

    given = parse_args(["export", "RUN", *flags])
    job = parser().parse_args(as_argv(parser(), given))
    for key in ("run", "int8", "per_channel", "manifest", "threads"):
        assert getattr(job, key) == getattr(given, key), key
