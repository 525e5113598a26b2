"""The run skeleton every run-writing command shares (trainers.session)."""

from __future__ import annotations

import json
import os

from kidconsole import rundir
from kidconsole.errors import KidconsoleError


def _events(run):
    return [json.loads(line) for line in (run / rundir.EVENTS).read_text().splitlines()]


def test_a_session_started_by_hand_describes_itself_and_ends_finished(tmp_path):
    from trainers.session import Session

    s = Session("trainers.x", tmp_path / "run").open(True, 60)
    code = s.run(lambda: (s.begin("name: x\n", "x", rundir.EVALUATING), (rundir.FINISHED, "done"))[1])
    status = rundir.read_status(s.run_dir)
    assert code == 0 and status["state"] == "finished" and status["exit_code"] == 0
    assert status["pid"] == os.getpid() and status["name"] == "x" and status["error"] is None
    assert (s.run_dir / rundir.CONFIG).read_text() == "name: x\n"
    assert _events(s.run_dir)[-1] | {"t": 0} == {"t": 0, "kind": "end", "step": 0, "state": "finished",
                                                  "exit_code": 0, "reason": "done"}


def test_a_launched_session_keeps_the_launchers_pid_and_config(tmp_path):
    from trainers.session import Session

    run = tmp_path / "run"
    rundir.update_status(run, pid=12345, name="launched")
    (run / rundir.CONFIG).write_text("launcher's\n")
    s = Session("trainers.x", run).open(True, 60)
    s.run(lambda: (s.begin("mine\n", "mine", rundir.RUNNING), (rundir.FINISHED, "done"))[1])
    status = rundir.read_status(run)
    assert status["pid"] == 12345 and status["name"] == "launched"
    assert (run / rundir.CONFIG).read_text() == "launcher's\n"


def test_an_unexpected_error_fails_the_run_with_its_first_line(tmp_path, capsys):
    from trainers.session import Session

    def body():
        raise ValueError("first line\nsecond line")

    s = Session("trainers.x", tmp_path / "run").open(True, 60)
    assert s.run(body) == 1
    status = rundir.read_status(s.run_dir)
    assert status["state"] == "failed" and status["error"] == "ValueError: first line"
    assert "Traceback" in capsys.readouterr().err  # the whole traceback goes to the log
    assert _events(s.run_dir)[-1]["state"] == "failed"


def test_a_bad_config_fails_the_run_before_anything_starts(tmp_path, capsys):
    from trainers.session import Session

    def load():
        raise KidconsoleError("c.yaml: data.test_manifest: required")

    s = Session("trainers.x", tmp_path / "run")
    assert s.load(load) is None
    assert rundir.read_status(s.run_dir)["error"] == "c.yaml: data.test_manifest: required"
    assert "trainers.x: error: c.yaml: data.test_manifest" in capsys.readouterr().err
