"""Fault injection on the trainer: broken rows and files, worker bugs, divergence, signals.

Each test pins one row of docs/reliability.md. Where the fault is about processes, the
trainer runs as it does for a user: ``accelerate launch`` in a session of its own.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from kidconsole import rundir
from kidconsole.errors import KidconsoleError
from kidconsole.manifest import read_manifest, write_manifest
from trainers.batching import plan_epoch
from trainers.data import load_rows
from trainers.loop import bad_data_verdict
from trainers.train import main as train_main
from runs_helpers import FAKE, session_pids, wait_for

HERE = Path(__file__).resolve().parent


def _edit_lines(src: Path, dst: Path, edits: dict[int, dict]) -> Path:
    """A copy of manifest ``src`` with the given fields of the given (1-based) lines replaced."""
    lines = src.read_text(encoding="utf-8").splitlines()
    for lineno, fields in edits.items():
        lines[lineno - 1] = json.dumps({**json.loads(lines[lineno - 1]), **fields}, ensure_ascii=False)
    dst.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dst


def _train(config: Path, run: Path) -> int:
    return train_main(["--config", str(config), "--run-dir", str(run)])


def _bad_warnings(run: Path, rd) -> list[dict]:
    return [e for e in rd.events(run, "warning") if e["what"] == "bad_sample"]


# ---------- a DataLoader worker's exception ----------

@pytest.mark.slow
@pytest.mark.parametrize("where", ["row", "stream"])
def test_a_bug_in_a_dataloader_worker_ends_the_run_in_seconds_leaving_no_process(where, make_config, tmp_path,
                                                                                  tones, rd):
    config = make_config(data__test_manifest=None, data__num_workers=1)
    run = tmp_path / "run"
    proc = rd.launch(config, run, module="buggy_trainer",
                     env={"BUGGY_ID": "train-0005", "BUGGY_WHERE": where,
                          "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])})
    try:
        rd.wait_for(lambda: (run / "status.json").exists() and rd.status(run).get("state") == "failed", 60,
                    "the failed state")
        failed_at = time.time()
        wait_for(lambda: not session_pids(proc.pid), 20)  # launcher, trainer and its workers: all gone
        assert time.time() - failed_at < 15
        assert proc.wait(timeout=5) != 0
    finally:
        if session_pids(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
    error = rd.status(run)["error"]
    assert "an injected bug" in error
    if where == "row":  # the row is known: its manifest line and id are named
        assert f"{tones['train']}:6" in error and "train-0005" in error
    assert rd.events(run, "end")[-1]["state"] == "failed"


# ---------- rows the trainer cannot use ----------

def test_rows_without_usable_phones_are_skipped_and_counted_at_load(make_config, tmp_path, tones, rd):
    train = _edit_lines(tones["train"], tmp_path / "train.jsonl",
                        {3: {"phones": None}, 5: {"phones": 5}, 8: {"phones": "  "}})
    valid = _edit_lines(tones["valid"], tmp_path / "valid.jsonl", {2: {"phones": None}})
    config = make_config(data__train_manifest=str(train), data__valid_manifest=str(valid),
                         data__test_manifest=None, data__max_bad_share=0.1)
    run = tmp_path / "run"
    assert _train(config, run) == 0
    assert rd.status(run)["state"] == "finished"
    bad = {e["id"]: e["message"] for e in _bad_warnings(run, rd)}
    assert set(bad) == {"train-0002", "train-0004", "train-0007", "validation-0001"}
    assert f"{train}:3" in bad["train-0002"] and "phones" in bad["train-0002"]
    assert f"{train}:5" in bad["train-0004"] and f"{train}:8" in bad["train-0007"]
    assert bad["validation-0001"].startswith("validation: ") and f"{valid}:2" in bad["validation-0001"]
    assert rd.events(run, "eval")[-1]["n"] == 9  # scored without the unusable validation row
    assert rd.events(run, "train")[-1]["samples"] == 37


def test_load_rows_reports_unusable_rows_by_file_and_line(tmp_path, tones):
    path = _edit_lines(tones["train"], tmp_path / "m.jsonl", {1: {"phones": None}, 2: {"audio": 7},
                                                              3: {"duration": "long"}, 4: {"id": ""}})
    bad: list[tuple[str, str]] = []
    rows = load_rows(str(path), bad=bad)
    assert len(rows) == 36
    assert [why.split(": ")[0] for _, why in bad] == [f"{path}:{n}" for n in (1, 2, 3, 4)]
    assert [uid for uid, _ in bad[:3]] == ["train-0000", "train-0001", "train-0002"]


def test_a_manifest_with_no_usable_row_is_an_error(tmp_path, tones):
    path = _edit_lines(tones["valid"], tmp_path / "m.jsonl", {n: {"phones": None} for n in range(1, 11)})
    with pytest.raises(KidconsoleError, match="no usable rows"):
        load_rows(str(path), bad=[])


def test_a_manifest_that_is_not_utf8_names_file_and_line(tmp_path, tones):
    path = tmp_path / "latin1.jsonl"
    lines = tones["train"].read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b'"text":""', '"text":"caf\u00e9"'.encode("latin-1"))
    path.write_bytes(b"".join(lines))
    with pytest.raises(KidconsoleError, match=rf"{path}:3: not UTF-8"):
        list(read_manifest(path))


# ---------- the bad-sample budget ----------

def _corpus_with_broken_files(tmp_path, n_rows: int, broken_first: int, seed: int = 7):
    """A tone corpus of ``n_rows`` whose first ``broken_first`` utterances in the epoch's plan are corrupt WAVs."""
    from trainers.tiny import tone_corpus

    paths = tone_corpus(tmp_path / "corpus", n_train=n_rows, n_valid=4, n_test=0, phone_seconds=0.05)
    rows = list(read_manifest(paths["train"]))
    # the order the trainer draws them in (seed * 1000 + phase, epoch 0; the test configs' batching)
    plan = plan_epoch([r.duration for r in rows], seed=seed * 1000, epoch=0, batch_seconds=8.0, max_utts=16,
                      bucket=64)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVE but not really")
    for i in [i for b in plan for i in b][:broken_first]:
        rows[i].audio = str(corrupt)
    write_manifest(paths["train"], rows)
    return paths


def test_one_corrupt_file_early_does_not_fail_a_good_corpus(make_config, tmp_path, rd):
    # 1 in 150 (0.67%): the old rule judged the share over the first 20 samples and failed at step 3
    corpus = _corpus_with_broken_files(tmp_path, 150, broken_first=1)
    config = make_config(data__train_manifest=str(corpus["train"]), data__valid_manifest=str(corpus["valid"]),
                         data__test_manifest=None, train__log_every=5)  # the default data.max_bad_share
    run = tmp_path / "run"
    assert _train(config, run) == 0, rd.status(run).get("error")
    assert rd.status(run)["state"] == "finished"
    assert len(_bad_warnings(run, rd)) == 1


def test_a_mostly_broken_corpus_still_fails_fast(make_config, tmp_path, rd):
    corpus = _corpus_with_broken_files(tmp_path, 150, broken_first=50)
    config = make_config(data__train_manifest=str(corpus["train"]), data__valid_manifest=str(corpus["valid"]),
                         data__test_manifest=None)
    run = tmp_path / "run"
    assert _train(config, run) == 1
    st = rd.status(run)
    assert st["state"] == "failed" and "data.max_bad_share" in st["error"]
    assert st["step"] <= 2  # judged at the first logged steps, not after the epoch


@pytest.mark.parametrize("bad, seen, window, share, cap, fails", [
    (1, 20, 301, 0.01, None, False),     # one early bad file: the share is not judged on 20 samples
    (1, 301, 301, 0.01, None, False),    # ... nor over the whole (small) epoch
    (4, 40, 301, 0.01, None, True),      # more bad than the whole window may hold: fails before it is full
    (400, 1_000_000, 1000, 0.01, None, False),  # a few hundred broken files in a large corpus
    (11, 1000, 1000, 0.01, None, True),
    (6, 1_000_000, 1000, 0.01, 5, True),  # data.max_bad_samples caps the count whatever the share
])
def test_the_bad_sample_budget_is_judged_over_a_window(bad, seen, window, share, cap, fails):
    verdict = bad_data_verdict(bad, seen, window=window, max_share=share, max_samples=cap)
    assert (verdict is not None) == fails
    if fails:
        assert ("data.max_bad_samples" if cap is not None and bad > cap else "data.max_bad_share") in verdict


# ---------- evaluation manifests ----------

@pytest.mark.parametrize("which", ["valid", "test"])
def test_duplicate_ids_in_an_evaluation_manifest_are_refused_before_training(which, make_config, tmp_path,
                                                                             tones, rd):
    first = json.loads(tones[which].read_text(encoding="utf-8").splitlines()[1])["id"]
    dup = _edit_lines(tones[which], tmp_path / f"{which}.jsonl", {4: {"id": first}})
    config = make_config(**{f"data__{which}_manifest": str(dup)})
    run = tmp_path / "run"
    assert _train(config, run) == 1
    error = rd.status(run)["error"]
    assert str(dup) in error and first in error and "lines 2, 4" in error
    assert rd.events(run, "train") == []  # refused before any training


# ---------- non-finite training ----------

@pytest.mark.parametrize("over", [
    {"lora__alpha": 1.0e38},  # every gradient is infinite: no step is ever taken
    {"phases": [{"epochs": 1, "lr": 1.0e30, "warmup": 0}]},  # one step makes the weights non-finite
], ids=["every-step", "weights"])
def test_a_run_that_learns_nothing_finite_fails_and_exports_nothing(over, make_config, tmp_path, rd):
    config = make_config(data__test_manifest=None, **over)
    run = tmp_path / "run"
    assert _train(config, run) == 1
    st = rd.status(run)
    assert st["state"] == "failed" and "non-finite" in st["error"]
    assert not (run / "exports").exists()


def test_a_run_whose_last_steps_are_all_non_finite_fails_at_the_limit(make_config, tmp_path, rd):
    config = make_config(data__test_manifest=None, train__max_nonfinite_steps=3,
                         phases=[{"epochs": 2, "lr": 1.0e30, "warmup": 0}])
    run = tmp_path / "run"
    assert _train(config, run) == 1
    st = rd.status(run)
    assert st["state"] == "failed" and "train.max_nonfinite_steps" in st["error"]
    assert st["step"] == 4  # step 1 finite, steps 2-4 not
    assert rd.events(run, "end")[-1]["reason"] == st["error"]


# ---------- a trainer killed by a signal ----------

@pytest.mark.slow
def test_a_trainer_killed_by_a_signal_is_reported_with_the_signal_and_the_step(tmp_path, fake_env, run_config):
    from kidconsole.runs.launch import launch_run

    fake_env.setenv("FAKE_STEPS", "100000")
    fake_env.setenv("FAKE_STEP_S", "0.05")
    run_dir = launch_run(run_config, runs_root=tmp_path / "runs", name="killed", trainer_module=FAKE)
    status = wait_for(lambda: (s := rundir.read_status(run_dir)).get("step", 0) >= 5 and s)
    trainer = wait_for(lambda: [p for p in psutil.Process(status["pid"]).children(recursive=True)
                                if any(FAKE in a for a in p.cmdline()) and "accelerate" not in " ".join(p.cmdline())])
    trainer[0].send_signal(signal.SIGKILL)
    wait_for(lambda: rundir.read_status(run_dir).get("state") in rundir.FINAL_STATES
             and not session_pids(status["sid"]), 30)
    status = rundir.read_status(run_dir)
    assert status["state"] == rundir.FAILED
    assert status["error"] == f"the trainer was killed by SIGKILL at step {status['step']}"


# ---------- the disk fills up ----------

@pytest.mark.slow
def test_a_full_disk_fails_the_run_naming_the_path_and_keeps_the_last_good_checkpoint(make_config, tmp_path, rd):
    config = make_config(data__test_manifest=None, train__eval_every=3, train__keep_last=5,
                         phases=[{"name": "only", "epochs": 50, "lr": 3.0e-3, "warmup": 1}])
    run = tmp_path / "run"
    proc = rd.launch(config, run, module="full_disk_trainer",
                     env={"FULL_AFTER": "3",
                          "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])})
    try:
        assert proc.wait(timeout=240) != 0
    finally:
        if session_pids(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
    status = rd.status(run)
    assert status["state"] == "failed"
    assert status["error"].startswith(f"disk full at {run / rundir.CHECKPOINTS}")
    assert not list(run.rglob("*.tmp")) and not rundir.unfinished_writes(run / rundir.CHECKPOINTS)
    good = rundir.complete_checkpoints(run / rundir.CHECKPOINTS)
    assert len(good) == 3 and rundir.newest_checkpoint(run / rundir.CHECKPOINTS) == good[-1]


# ---------- an evaluation that gives no number ----------

def test_a_nan_first_evaluation_does_not_stay_the_best(make_config, tmp_path, rd, monkeypatch):
    """The first validation gives PER nan (a transient fault in the eval pass): a later finite
    evaluation must become the best, not lose to nan forever (every comparison with nan is false)."""
    import dataclasses
    import math

    from trainers import loop

    real, calls = loop.evaluate, []

    def first_one_nan(*args, **kwargs):
        res = real(*args, **kwargs)
        calls.append(res)
        return dataclasses.replace(res, per=float("nan"), cer=None) if len(calls) == 1 else res

    monkeypatch.setattr(loop, "evaluate", first_one_nan)
    config = make_config(data__test_manifest=None, train__eval_every=3,
                         phases=[{"name": "only", "epochs": 2, "lr": 3.0e-3, "warmup": 1}])
    run = tmp_path / "run"
    assert _train(config, run) == 0
    evals = rd.events(run, "eval")
    assert len(evals) >= 2 and (evals[0]["per"] is None or math.isnan(evals[0]["per"]))
    best = [e for e in evals if e["best"]]
    assert best[-1]["step"] > evals[0]["step"] and math.isfinite(best[-1]["per"])
