"""One owner of a run's life: one rule decides every state every surface shows, one function writes every end,
asking a state starts no process, and a read-only kind of run plugs in without a special case."""

from __future__ import annotations

import ast
import json
import os
import stat
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from kidconsole import rundir
from kidconsole.cli import main
from kidconsole.errors import KidconsoleError
from kidconsole.rundir.records import Status
from kidconsole.runs import kinds, life, slurm
from kidconsole.runs import state as rule
from kidconsole.runs.reader import RunReader

ROOT = Path(__file__).resolve().parents[2]


def _stopped_run(root: Path, name: str) -> Path:
    """A run that trained, stopped with a checkpoint, every process gone."""
    run = root / name
    rundir.update_status(run, name=name, state=rundir.STOPPED, pid=2 ** 22 + 7, trainer_module=rundir.TRAINER,
                         step=3, gpus=[])
    (run / rundir.CONFIG).write_text("name: x\n")
    events = rundir.EventWriter(run / rundir.EVENTS)
    events.emit(rundir.EV_TRAIN, step=3, loss=1.0)
    events.close()
    ckpt = rundir.tmp_checkpoint(run / rundir.CHECKPOINTS, rundir.checkpoint_name(3))
    ckpt.mkdir(parents=True)
    rundir.seal_checkpoint(ckpt, run / rundir.CHECKPOINTS / rundir.checkpoint_name(3))
    return run


@pytest.fixture
def ruled(monkeypatch):
    """The one rule, made to answer a chosen state per run name: what each surface shows must be its answer."""
    told: dict[str, str] = {}
    asked: list[str] = []
    real = rule.decide

    def decide(status: Status, **kw) -> str:
        asked.append(status.name or "")
        return told.get(status.name or "", real(status, **kw))

    monkeypatch.setattr(rule, "decide", decide)
    return told, asked


def test_the_card_run_ls_and_the_exports_panel_show_the_one_rules_state(tmp_path, ruled, capsys, monkeypatch):
    from kidconsole.tui.watcher import Watcher
    from kidconsole.tui.widgets.exports_panel import read_exports_state

    told, asked = ruled
    root = tmp_path / "runs"
    run = _stopped_run(root, "judged")
    told["judged"] = rundir.STALLED  # a state no file of it says: only the rule can have said it
    (view,) = Watcher([str(root)], system=False).poll_once().values()
    assert view.state == rundir.STALLED
    assert main(["run", "ls", "--runs", str(root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["state"] == rundir.STALLED
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["run", "ls", "--runs", str(root)]) == 0
    assert "stalled" in capsys.readouterr().out
    rundir.update_status(run / rundir.EXPORTS / "onnx-fp32", name="judged/onnx-fp32", state=rundir.FINISHED)
    rundir.update_status(run / rundir.EXPORTS, name="judged/exports", state=rundir.FINISHED)
    told.update({"judged/onnx-fp32": rundir.INTERRUPTED, "judged/exports": rundir.RUNNING})
    data = read_exports_state(run)
    assert data["folders"][0]["state"] == rundir.INTERRUPTED and data["job"] == rundir.RUNNING
    assert {"judged", "judged/onnx-fp32", "judged/exports"} <= set(asked)


def test_stop_and_resume_act_on_the_one_rules_state(tmp_path, ruled):
    told, asked = ruled
    run = _stopped_run(tmp_path / "runs", "judged")
    told["judged"] = rundir.RUNNING  # the rule says it runs (its processes gone or not): resume refuses
    with pytest.raises(KidconsoleError, match="still running"):
        life.resume(run)
    assert rundir.read_status(run).get("resumes") is None  # nothing was started
    told["judged"] = rundir.INTERRUPTED
    report = life.stop(run, timeout=1)  # no process of it here: the report's state is the rule's
    assert report.state == rundir.INTERRUPTED and not report.terminated
    assert asked.count("judged") >= 2


FINAL = {"FINISHED", "STOPPED", "FAILED"}


def _writes_an_end(call: ast.Call) -> bool:
    """A call that writes a final state or an `end` event other than through rundir.write_end."""
    name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
    if name in ("update_status", "status"):
        return any(kw.arg == "state" and isinstance(kw.value, ast.Attribute) and kw.value.attr in FINAL
                   for kw in call.keywords)
    if name == "emit":
        return any(isinstance(a, ast.Attribute) and a.attr == "EV_END" for a in call.args)
    return False


def test_one_function_writes_a_runs_end():
    """Every final status and `end` event of both halves is written by rundir.write_end, nowhere else."""
    found = []
    for folder in ("kidconsole", "trainers"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == ROOT / "kidconsole" / "rundir" / "ending.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and _writes_an_end(node):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, f"a run's end written outside rundir.write_end: {found}"


def test_write_end_writes_the_status_and_the_event_together(tmp_path):
    run = tmp_path / "r"
    assert rundir.write_end(run, rundir.FAILED, "boom", exit_code=3, step=9, error="boom") == []
    status = rundir.read_status(run)
    assert (status["state"], status["exit_code"], status["step"], status["error"]) == ("failed", 3, 9, "boom")
    (end,) = [json.loads(ln) for ln in (run / rundir.EVENTS).read_text().splitlines()]
    assert (end["kind"], end["state"], end["reason"], end["step"]) == ("end", "failed", "boom", 9)
    with pytest.raises(ValueError):
        rundir.write_end(run, rundir.RUNNING, "not an end")


def test_asking_a_slurm_runs_state_starts_no_process(tmp_path, monkeypatch):
    """The state of a Slurm run reads the last sample of its job; only a sample (the watcher's schedule,
    `run ls`) queries Slurm."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "squeue.calls"
    bin_dir.mkdir()
    squeue = bin_dir / "squeue"
    squeue.write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\necho '4242|PENDING|Priority|'\n")
    squeue.chmod(squeue.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    slurm.forget("4242")
    run = tmp_path / "runs" / "on-slurm"
    rundir.update_status(run, name="on-slurm", kind=rundir.SLURM, state=rundir.STARTING, slurm_job_id="4242")
    reader = RunReader(run)
    reader.poll()
    assert reader.state() == rundir.STARTING and not calls.exists()  # no sample yet: the run's own state
    life.sample([(run, reader.status)])
    assert calls.read_text().count("\n") == 1
    assert reader.state() == rundir.PENDING
    assert life.kind_of(run).where(reader.status) == "job 4242 PENDING (Priority)"
    for _ in range(3):
        reader.state()
    assert calls.read_text().count("\n") == 1
    slurm.forget("4242")


def test_the_kind_of_a_run_is_its_status_or_told_from_its_keys(tmp_path):
    def kind(**status) -> str:
        return kinds.kind_of(tmp_path, Status(**status)).name

    assert kind() == kind(state="running") == rundir.LOCAL
    assert kind(slurm_job_id="7") == rundir.SLURM and kind(machines=2) == rundir.MACHINES
    assert kind(queued_at=1.0) == rundir.QUEUED_KIND and kind(derived="average") == rundir.JOB
    assert kind(kind=rundir.JOB, slurm_job_id="7") == rundir.JOB  # the recorded kind wins


def test_a_job_is_not_resumed(tmp_path):
    run = _stopped_run(tmp_path / "runs", "avg")
    rundir.update_status(run, kind=rundir.JOB, derived=rundir.AVERAGE)
    with pytest.raises(KidconsoleError, match=r"an average \(`kidconsole run average`\) is a job.*make it again"):
        life.resume(run)


class CsvLogKind(kinds.ReadOnlyKind):
    """A made-up tool's runs: a folder with metrics.csv (step,loss) and DONE once it finished."""
    name, tool = "csvlog", "csvlog"

    def marks(self, folder: Path) -> bool:
        return (folder / "metrics.csv").is_file()

    def reader(self, run_dir: Path):
        return CsvLogReader(run_dir)


class CsvLogReader(RunReader):
    def _read_status(self) -> None:
        files = [self.path / "metrics.csv", self.path / "DONE"]
        changed = max(f.stat().st_mtime for f in files if f.exists())
        state = rundir.FINISHED if files[1].exists() else rundir.RUNNING
        self._status = Status(name=self.path.name, state=state, updated_at=changed)

    def poll(self) -> int:
        self._read_status()
        rows = (self.path / "metrics.csv").read_text().split()[1:]
        events = [{"t": self._status.updated_at, "kind": rundir.EV_TRAIN, "step": int(step), "loss": float(loss)}
                  for step, loss in (r.split(",") for r in rows[self.n_events:])]
        self.fold(events)
        return len(events)


def test_a_read_only_kind_plugs_in_without_a_special_case(tmp_path, capsys, monkeypatch):
    from kidconsole.tui.watcher import Watcher

    monkeypatch.setattr(kinds, "KINDS", list(kinds.KINDS))
    kinds.register(CsvLogKind())
    root = tmp_path / "runs"
    (root / "theirs").mkdir(parents=True)
    (root / "theirs" / "metrics.csv").write_text("step,loss\n1,2.5\n2,1.5\n")
    (view,) = Watcher([str(root)], system=False).poll_once().values()
    assert (view.name, view.kind, view.state, view.step) == ("theirs", "csvlog", rundir.RUNNING, 2)
    assert view.last["train/loss"] == 1.5
    (root / "theirs" / "DONE").touch()
    assert main(["run", "ls", "--runs", str(root), "--json"]) == 0
    (rec,) = json.loads(capsys.readouterr().out)
    assert (rec["kind"], rec["state"], rec["loss"]) == ("csvlog", rundir.FINISHED, 1.5)
    for act in (lambda: life.stop(root / "theirs"), lambda: life.resume(root / "theirs")):
        with pytest.raises(KidconsoleError, match=r"a run written by csvlog \(csvlog\): kidconsole reads it where "
                                                  r"it lies and cannot (stop|resume) it"):
            act()
