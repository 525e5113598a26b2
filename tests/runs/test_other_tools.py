"""Runs written by other tools, watched live: a Hugging Face Trainer's output folder and a plain TensorBoard folder
are runs of read-only kinds (a card, a `run ls` row, charts like ours), read as they grow; their state comes
from the one rule on their files' signs; a damaged or half-written file breaks nothing; stop and resume are
refused; a run of ours's TensorBoard mirror is never a run of its own."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from kidconsole import rundir
from kidconsole.cli import main
from kidconsole.errors import KidconsoleError
from kidconsole.runs import holders, life
from kidconsole.runs.discover import find_runs
from kidconsole.runs.snapshot import snapshot_of
from kidconsole.runs.foreign import DAMAGED_EVENTS, UNREADABLE_STATE, HfReader
from kidconsole.runs.tfevents import TensorBoardTail

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
RECORDING = TESTS / "console" / "recordings" / "r16-lr3e-4"
SCRIPT = HERE / "hf_trainer_script.py"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


_trainer = _load("trainer_fixtures_other_tools", TESTS / "trainer" / "conftest.py")
tiny_model, tones = _trainer.tiny_model, _trainer.tones


def ls_json(root: Path, capsys, *extra: str) -> list[dict]:
    capsys.readouterr()
    assert main(["run", "ls", "--runs", str(root), "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def write_hf_events(folder: Path, steps: range, *, stamp: int = 1_700_000_000, max_steps: int | None = None,
                    eval_every: int = 50, end: bool = False, per: float | None = None) -> Path:
    """Events as the Trainer's TensorBoard callback writes them: its arguments as text, one scalar per tag."""
    from tensorboardX import SummaryWriter

    w = SummaryWriter(str(folder), flush_secs=3600)
    if max_steps:
        w.add_text("args", json.dumps({"max_steps": max_steps, "num_train_epochs": 3, "logging_steps": 1}))
    for s in steps:
        t = stamp + s
        w.add_scalar("train/loss", 2.0 / s, s, walltime=t)
        w.add_scalar("train/learning_rate", 1e-4, s, walltime=t)
        w.add_scalar("train/grad_norm", 1.0 + s % 3, s, walltime=t)
        w.add_scalar("train/epoch", s / 1000, s, walltime=t)
        if s % eval_every == 0:
            w.add_scalar("eval/loss", 1.0 / s, s, walltime=t)
            w.add_scalar("eval/wer", 0.5 - s / 10_000, s, walltime=t)
            w.add_scalar("eval/accuracy", s / 10_000, s, walltime=t)
            if per is not None:
                w.add_scalar("eval/per", per, s, walltime=t)
            w.add_scalar("eval/runtime", 3.0, s, walltime=t)
    if end:
        w.add_scalar("train/train_runtime", float(steps[-1]), steps[-1], walltime=stamp + steps[-1])
    w.close()
    (written,) = folder.glob("events.out.tfevents.*")
    return written.rename(folder / f"events.out.tfevents.{stamp}.host")  # named for its writer's start


def write_state(folder: Path, step: int, *, max_steps: int = 1000, eval_every: int = 50, best: int | None = None,
                end: bool = False) -> Path:
    """A Trainer's trainer_state.json (as ``TrainerState.save_to_json`` writes it) in ``folder``."""
    history = []
    for s in range(1, step + 1):
        history.append({"loss": 2.0 / s, "learning_rate": 1e-4, "grad_norm": 1.0, "epoch": s / 1000, "step": s})
        if s % eval_every == 0:
            history.append({"eval_loss": 1.0 / s, "eval_per": 0.4 - s / 10_000, "eval_runtime": 3.0,
                            "epoch": s / 1000, "step": s})
    if end:
        history.append({"train_runtime": 100.0, "train_loss": 0.5, "epoch": step / 1000, "step": step})
    folder.mkdir(parents=True, exist_ok=True)
    state = {"global_step": step, "max_steps": max_steps, "epoch": step / 1000, "num_train_epochs": 1,
             "log_history": history, "best_global_step": best,
             "best_model_checkpoint": str(folder.parent / f"checkpoint-{best}") if best else None}
    path = folder / "trainer_state.json"
    path.write_text(json.dumps(state, indent=2, sort_keys=True))
    return path


def age(path: Path, seconds: float) -> None:
    """Make every file under ``path`` (and itself) look ``seconds`` old."""
    t = time.time() - seconds
    for p in [path, *path.rglob("*")]:
        os.utime(p, (t, t))


# ---- a real Trainer, live ----------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_real_trainer_appears_as_a_run_with_its_curves_while_it_trains_then_finished(
        tmp_path, tiny_model, tones, capsys):
    root = tmp_path / "runs"
    out, gate = root / "hf-tiny", tmp_path / "gate"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    log = open(tmp_path / "trainer.log", "wb")
    proc = subprocess.Popen([sys.executable, str(SCRIPT), str(tiny_model), str(tones["train"]), str(tones["valid"]),
                             str(out), "20", str(gate)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        seen_growing = []
        deadline = time.monotonic() + 600
        while not Path(f"{gate}.waiting").exists():  # the Trainer trains; `run ls` watches it grow
            assert proc.poll() is None, (tmp_path / "trainer.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the Trainer never reached the gate"
            recs = ls_json(root, capsys)
            if recs:
                seen_growing.append(recs[0]["step"])
            time.sleep(0.5)
        # mid-training (the Trainer waits at step 12 with its event file open): a run with its curves
        (rec,) = ls_json(root, capsys)
        assert (rec["kind"], rec["state"], rec["where"]) == ("hf", rundir.RUNNING, "HF Trainer")
        assert (rec["step"], rec["total_steps"]) == (12, 20)
        assert rec["loss"] is not None and rec["eval_per"] is not None and rec["best_per_step"] in (5, 10)
        assert rec["eval_seconds"] > 0 and 0 < rec["eval_share"] < 1
        reader = life.open_run(out)
        reader.load_all()
        series = reader.series
        assert list(series["train/loss"].x) == list(range(1, 13))
        for key in ("train/lr", "train/grad_norm", "train/epoch", "eval/loss"):
            assert len(series[key]), key
        assert list(series["eval/per"].x) == [5, 10]
        assert [c["step"] for c in reader.checkpoints()] == [5, 10]
        assert reader.summary["phase_name"].startswith("epoch ")
        assert holders.held(out, max_age=0)  # its writer holds its event file open
        gate.touch()
        assert proc.wait(timeout=600) == 0, (tmp_path / "trainer.log").read_text()[-3000:]
        (rec,) = ls_json(root, capsys)
        assert (rec["state"], rec["step"], rec["total_steps"]) == (rundir.FINISHED, 20, 20)
        reader.poll()
        assert list(reader.series["train/loss"].x) == list(range(1, 21))
        assert list(reader.series["eval/per"].x)[:4] == [5, 10, 15, 20]
        assert any(c["best"] for c in reader.checkpoints())
        assert any(0 < s < 12 for s in seen_growing if s)  # seen before the gate too
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


# ---- reading a long history newest first ------------------------------------------------------------------

def _points(tb: TensorBoardTail, key: str) -> list[tuple[float, float]]:
    s = tb.scalars.by["step"][key]
    return list(zip(s.x.tolist(), s.y.tolist()))


def test_the_newest_history_comes_first_and_the_rest_loads_on_later_polls(tmp_path):
    write_hf_events(tmp_path / "a", range(1, 301), stamp=1_700_000_000)
    write_hf_events(tmp_path / "b", range(201, 3001), stamp=1_700_000_500)  # a resumed writer: steps 201- again
    whole = TensorBoardTail(tmp_path)
    whole.poll()
    tail = TensorBoardTail(tmp_path, newest_bytes=4096, older_bytes=16384)
    tail.poll()
    first = tail.scalars.by["step"]["train/loss"]
    assert tail.loading and first.x[-1] == 3000 and 2900 < first.x[0] < 3000
    polls = 0
    while tail.loading:
        tail.poll()
        polls += 1
        assert polls < 200
    assert polls > 3
    for key in ("train/loss", "train/lr", "eval/wer"):
        assert _points(tail, key) == _points(whole, key), key
    steps = [x for x, _ in _points(tail, "train/loss")]
    assert steps == sorted(steps) and sorted(set(steps)) == list(range(1, 3001))  # the redone steps replaced
    assert tail.texts == whole.texts == {}
    assert tail.started_at == 1_700_000_000


def test_a_damaged_stretch_of_older_history_is_passed_over_and_counted(tmp_path):
    path = write_hf_events(tmp_path / "runs" / "w", range(1, 2001), max_steps=2000)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    reader = HfReader(tmp_path, newest_bytes=8192, older_bytes=20000)
    reader.load_all()
    steps = reader.series["train/loss"].x
    assert steps[0] == 1 and steps[-1] == 2000  # both sides of the damage
    points = sum(len(s) for s in reader.series.values())
    assert 2000 * 4 + 40 * 4 - 10 < points < 2000 * 4 + 40 * 4  # a record or two lost with it
    assert reader.warning_counts == {DAMAGED_EVENTS: 1}
    assert "fails its checksum" in reader.tb_problems()[0]
    assert reader.summary["total_steps"] == 2000  # the arguments, read from the file's head at once


def test_a_corrupt_or_half_written_event_file_breaks_neither_run_ls_nor_the_console(tmp_path, capsys):
    root = tmp_path / "runs"
    half = write_hf_events(root / "hf-half" / "runs" / "w", range(1, 101), max_steps=500)
    data = half.read_bytes()
    half.write_bytes(data[:-7])  # the last record half-written
    (root / "tb-noise").mkdir(parents=True)
    (root / "tb-noise" / "events.out.tfevents.1700000000.h").write_bytes(os.urandom(3000))  # not TFRecord at all
    write_state(root / "hf-state" / "checkpoint-50", 50)
    (root / "hf-state" / "checkpoint-50" / "trainer_state.json").write_text('{"log_history": [{"loss": 1')
    shutil.copytree(RECORDING, root / "ours")
    recs = {r["run"]: r for r in ls_json(root, capsys)}
    assert set(recs) == {"hf-half", "tb-noise", "hf-state", "ours"}
    assert recs["hf-half"]["step"] in (99, 100) and recs["hf-half"]["total_steps"] == 500
    assert recs["tb-noise"]["step"] is None and recs["hf-state"]["step"] is None
    assert main(["run", "ls", "--runs", str(root)]) == 0
    assert "hf-half" in capsys.readouterr().out
    half.write_bytes(data)  # the writer finishes the record: read at the next poll
    reader = life.open_run(root / "hf-half")
    reader.load_all()
    assert reader.series["train/loss"].x[-1] == 100 and not reader.warning_counts
    noise = life.open_run(root / "tb-noise")
    noise.poll()
    assert noise.warning_counts == {DAMAGED_EVENTS: 1}
    state = life.open_run(root / "hf-state")
    state.poll()
    assert state.warning_counts == {UNREADABLE_STATE: 1}


async def test_the_console_shows_damaged_runs_of_other_tools_beside_ours(tmp_path):
    from kidconsole.tui.widgets.run_card import RunCard

    console = _load("console_fixtures_other_tools", TESTS / "console" / "conftest.py")
    root = tmp_path / "runs"
    half = write_hf_events(root / "hf-half" / "runs" / "w", range(1, 101), max_steps=500)
    half.write_bytes(half.read_bytes()[:-7])
    (root / "tb-noise").mkdir()
    (root / "tb-noise" / "events.out.tfevents.1700000000.h").write_bytes(os.urandom(3000))
    console.replay_all(console.RECORDINGS, root, start=10**9)
    app = console.make_app([root])
    async with app.run_test(size=(120, 40)) as pilot:
        deadline = time.monotonic() + 20
        while len(app.views) < 4 and time.monotonic() < deadline:
            await pilot.pause(0.05)
        await pilot.pause(0.2)
        names = {c.view.name: c for c in app.screen.query(RunCard)}
        assert set(names) == {"hf-half", "tb-noise", "r16-lr3e-4", "r32-lr1e-4"}
        assert names["hf-half"].view.step in (99, 100) and names["hf-half"].view.where == "HF Trainer"
        assert "damaged event files" in str(names["tb-noise"].render())


# ---- states by the one rule -------------------------------------------------------------------------------

# a process that holds a file open (its path read from stdin, as a writer that keeps its event file open)
HOLD = "import sys, time; f = open(sys.stdin.readline().strip(), 'rb'); print('open', flush=True); time.sleep(120)"


def test_a_trainer_folder_runs_while_it_changes_or_is_held_then_reads_interrupted_or_finished(tmp_path, capsys):
    root = tmp_path / "runs"
    run = root / "hf"
    write_hf_events(run / "runs" / "w", range(1, 51), max_steps=100)

    def state() -> str:
        holders.sample()
        (rec,) = ls_json(root, capsys)
        return rec["state"]

    assert state() == rundir.RUNNING  # it just changed
    age(run, 3600)
    assert state() == rundir.INTERRUPTED  # quiet, no process holds it, no end logged
    events = next(run.rglob("events.out.tfevents.*"))
    holder = subprocess.Popen([sys.executable, "-c", HOLD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        holder.stdin.write(f"{events}\n")
        holder.stdin.flush()
        assert holder.stdout.readline() == "open\n"
        assert state() == rundir.STALLED  # quiet but a process here holds it open
        assert ls_json(root, capsys, "--stall-after", "7200")[0]["state"] == rundir.RUNNING
    finally:
        holder.kill()
        holder.wait()
    write_state(run / "checkpoint-100", 100, max_steps=100)  # a checkpoint at max_steps, but no end logged
    age(run, 3600)
    assert state() == rundir.INTERRUPTED
    write_hf_events(run / "runs" / "w2", range(51, 101), stamp=1_700_000_100, end=True)  # resumed, then ended
    age(run, 3600)
    assert state() == rundir.FINISHED


def test_a_folder_written_only_at_checkpoints_is_given_the_gap_between_them(tmp_path, capsys):
    root = tmp_path / "runs"
    run = root / "hf"
    for step, ago in ((50, 5000), (100, 2000)):  # checkpoints 50 minutes apart, the newest 33 minutes ago
        write_state(run / f"checkpoint-{step}", step)
        age(run / f"checkpoint-{step}", ago)
    os.utime(run, (time.time() - 2000,) * 2)
    assert ls_json(root, capsys)[0]["state"] == rundir.RUNNING  # the next checkpoint is not due yet (75 minutes)
    for step, ago in ((50, 8000), (100, 5000)):  # the same gap, the newest now 83 minutes ago
        age(run / f"checkpoint-{step}", ago)
    os.utime(run, (time.time() - 5000,) * 2)
    assert ls_json(root, capsys)[0]["state"] == rundir.INTERRUPTED
    write_state(run / "checkpoint-1000", 1000, max_steps=1000)  # a script that saves no state after training:
    age(run, 9000)  # its last checkpoint at max_steps is its end
    assert ls_json(root, capsys)[0]["state"] == rundir.FINISHED


def test_a_plain_tensorboard_folder_nobody_writes_any_more_reads_finished(tmp_path, capsys):
    root = tmp_path / "logs"
    write_hf_events(root / "exp1", range(1, 11))
    write_hf_events(root / "exp2", range(1, 21))
    age(root / "exp1", 3600)
    recs = {r["run"]: r for r in ls_json(root, capsys, "--sort", "name")}
    assert {n: (r["kind"], r["state"], r["step"]) for n, r in recs.items()} == {
        "exp1": ("tensorboard", rundir.FINISHED, 10), "exp2": ("tensorboard", rundir.RUNNING, 20)}


# ---- what a read-only run is and is not ------------------------------------------------------------------

def test_stop_and_resume_of_a_run_of_another_tool_are_refused_naming_it(tmp_path, capsys):
    run = tmp_path / "runs" / "hf"
    write_state(run / "checkpoint-50", 50)
    for act in (lambda: life.stop(run), lambda: life.resume(run)):
        with pytest.raises(KidconsoleError, match=r"a run written by the Hugging Face Trainer \(hf\): kidconsole "
                                                  r"reads it where it lies and cannot (stop|resume) it"):
            act()
    assert main(["run", "stop", str(run)]) != 0
    assert "cannot stop it; stop it with the Hugging Face Trainer" in capsys.readouterr().err


def test_a_mirrored_run_is_one_run_and_its_tensorboard_folder_none(tmp_path, capsys):
    from kidconsole.mirror import mirror_run

    root = tmp_path / "runs"
    ours = root / "r16"
    shutil.copytree(RECORDING, ours)
    mirror_run(ours, ["tensorboard"])
    assert any((ours / rundir.TENSORBOARD).glob("events.out.tfevents.*"))
    assert find_runs([root]) == [ours.resolve()]
    assert find_runs([ours / rundir.TENSORBOARD]) == []
    (rec,) = ls_json(root, capsys)
    assert (rec["run"], rec["kind"]) == ("r16", rundir.LOCAL)


def test_a_trainer_run_beside_ours_sorts_and_overlays_by_the_same_series(tmp_path, capsys):
    root = tmp_path / "runs"
    shutil.copytree(RECORDING, root / "ours")
    run = root / "hf"
    write_state(run / "checkpoint-500", 500, eval_every=100, best=500)
    write_hf_events(run / "runs" / "w", range(1, 801), max_steps=1000, eval_every=100)
    write_hf_events(root / "hf-per" / "runs" / "w", range(1, 201), eval_every=100, per=0.05)
    recs = ls_json(root, capsys, "--sort", "best")
    # by best PER: the Trainer's run that logged a better one first, then ours; the run whose newest events
    # hold no PER (its state does, which the console reads next) last
    assert [r["run"] for r in recs] == ["hf-per", "ours", "hf"]
    assert recs[0]["best_per"] < recs[1]["best_per"] and recs[2]["best_per"] is None
    ours, theirs = life.open_run(root / "ours"), life.open_run(run)
    ours.load_all()
    theirs.load_all()
    for key in ("train/loss", "train/lr", "train/grad_norm", "eval/loss", "eval/per"):
        assert len(ours.series[key]) and len(theirs.series[key]), key
    # the state's evaluations (eval/per, to its checkpoint) before the events', which log eval/wer
    assert list(theirs.series["eval/per"].x) == [100, 200, 300, 400, 500]
    assert list(theirs.series["eval/wer"].x) == [100, 200, 300, 400, 500, 600, 700, 800]
    summary = theirs.summary
    assert summary["eval/wer"]["best_step"] == 800 and summary["extra_metrics"] == ["eval/accuracy"]
    assert snapshot_of(theirs).metrics["eval/accuracy"].last == pytest.approx(0.08)
    assert [c["name"] for c in theirs.checkpoints() if c["best"]] == ["checkpoint-500"]
    np.testing.assert_allclose(theirs.series["train/loss"].y[:3], [2.0, 1.0, 2.0 / 3], rtol=1e-6)


def test_reading_runs_of_other_tools_imports_neither_torch_nor_tensorboardx(tmp_path):
    root = tmp_path / "runs"
    write_hf_events(root / "hf" / "runs" / "w", range(1, 101), max_steps=200)
    write_state(root / "hf" / "checkpoint-100", 100)
    write_hf_events(root / "tb", range(1, 11))
    probe = (f"import sys\nfrom kidconsole.cli import main\nmain(['run', 'ls', '--runs', {str(root)!r}])\n"
             "from kidconsole.runs.life import open_run\n"
             f"open_run({str(root / 'hf')!r}).load_all()\n"
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'tensorboardX', 'tensorboard'}))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "hf" in done.stdout and done.stdout.strip().splitlines()[-1] == "[]"


def test_a_long_trainer_state_gives_its_newest_entries_first_and_all_at_the_next_poll(tmp_path):
    from kidconsole.runs.hf_state import HfStateTail

    write_state(tmp_path / "checkpoint-500", 500, eval_every=100, end=True)
    tail = HfStateTail(tmp_path, newest=50)
    assert tail.poll() and tail.partial
    loss = tail.scalars.by["step"]["train/loss"]
    assert loss.x[0] > 400 and loss.x[-1] == 500
    st = tail.state  # the facts are of the whole history at once
    assert (st.evaluations, st.eval_seconds, st.train_runtime, st.global_step) == (5, 15.0, 100.0, 500)
    assert tail.poll() and not tail.partial
    assert list(tail.scalars.by["step"]["train/loss"].x) == list(range(1, 501))
    assert tail.poll() is False
