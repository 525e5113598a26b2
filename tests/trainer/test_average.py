"""Checkpoint averaging and ensembles: the arithmetic, and the runs they write (read by the report and the
console's reader like any run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from trainers.average import DELTAS, FACTORS, average_states, lora_gap

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
A = "base_model.model.wav2vec2.encoder.layers.0.attention.q_proj.lora_A.default.weight"
B = "base_model.model.wav2vec2.encoder.layers.0.attention.q_proj.lora_B.default.weight"
HEAD = "base_model.model.lm_head.modules_to_save.default.weight"


def _state(seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {A: torch.randn(4, 16, generator=g), B: torch.randn(8, 4, generator=g),
            HEAD: torch.randn(5, 8, generator=g)}


def test_averaging_two_checkpoints_gives_the_mean_of_their_tensors():
    s1, s2 = _state(1), _state(2)
    avg = average_states([s1, s2], FACTORS)
    for k in s1:
        assert torch.allclose(avg[k], (s1[k] + s2[k]) / 2)


def test_lora_deltas_averaging_gives_the_mean_of_the_updates_exactly():
    states = [_state(1), _state(2), _state(3)]
    avg = average_states(states, DELTAS)
    assert avg[A].shape == (12, 16) and avg[B].shape == (8, 12)  # rank K*r
    mean_update = sum(s[B] @ s[A] for s in states) / 3
    assert torch.allclose(avg[B] @ avg[A], mean_update, atol=1e-5)
    assert torch.allclose(avg[HEAD], sum(s[HEAD] for s in states) / 3)  # not a LoRA factor: the plain mean
    # the mean of the factors is not the mean of the updates (what deltas avoids), and the gap says how far
    naive = average_states(states, FACTORS)
    assert not torch.allclose(naive[B] @ naive[A], mean_update, atol=1e-3)
    assert lora_gap(states) > 0.1
    assert lora_gap([states[0], states[0]]) == pytest.approx(0.0, abs=1e-6)


def test_checkpoints_of_different_runs_are_refused():
    s1, s2 = _state(1), _state(2)
    del s2[HEAD]
    with pytest.raises(ValueError, match="other tensors"):
        average_states([s1, s2])


# ---- the runs -------------------------------------------------------------------------------------------

def _kidconsole(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kidconsole", *map(str, args)], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def source_run(tmp_path_factory) -> Path:
    """A finished LoRA run (new head: trained, saved with the adapter) with 4 scored checkpoints in its last
    phase."""
    from trainers.tiny import build_tiny, tone_corpus

    root = tmp_path_factory.mktemp("average")
    tones = tone_corpus(root / "tones", n_train=24, n_valid=6, n_test=8)
    base = build_tiny(root / "base", hidden=32, layers=1)
    cfg = {"name": "src", "seed": 5,
           "model": {"base": str(base), "start": "encoder", "freeze_feature_encoder": False},
           "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
           "data": {"train_manifest": str(tones["train"]), "valid_manifest": str(tones["valid"]),
                    "test_manifest": str(tones["test"]), "max_seconds": 4.0, "batch_seconds": 8.0,
                    "max_batch_utterances": 8, "bucket_utterances": 64, "num_workers": 0,
                    "eval_batch_seconds": 40.0},
           "train": {"log_every": 2, "eval_every": 2, "keep_last": 4, "heartbeat_seconds": 5.0},
           "phases": [{"name": "only", "epochs": 2, "lr": 5.0e-3, "warmup": 1}]}
    (root / "runs").mkdir()
    config = root / "run.yaml"
    config.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    run = root / "runs" / "src"
    done = subprocess.run([sys.executable, "-m", "trainers.train", "--config", str(config), "--run-dir", str(run)],
                          cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return run


def _read(run: Path, name: str) -> list[dict]:
    return [json.loads(ln) for ln in (run / name).read_text(encoding="utf-8").splitlines() if ln.strip()]


def test_choosing_the_best_checkpoints_follows_their_metric(source_run):
    from kidconsole.rundir import choose_checkpoints, last_phase_checkpoints

    found = last_phase_checkpoints(source_run)
    assert len(found) >= 3
    best = choose_checkpoints(source_run, best=2)
    assert sorted(c["metric"] for c in best) == sorted(c["metric"] for c in found)[:2]
    assert [c["step"] for c in choose_checkpoints(source_run, last=2)] == [c["step"] for c in found[-2:]]
    with pytest.raises(ValueError, match="not 99"):
        choose_checkpoints(source_run, best=99)
    with pytest.raises(ValueError, match="step 12345"):
        choose_checkpoints(source_run, steps=[12345])


def test_average_run_is_scored_exported_and_readable_like_any_run(source_run):
    from safetensors.torch import load_file

    from kidconsole.runs.reader import RunReader
    from trainers.checkpoint import read_weights

    done = _kidconsole("run", "average", source_run, "--last", "2", "--name", "avg")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = source_run.parent / "avg"
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "finished" and status["derived"] == "average" and len(status["sources"]) == 2
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["lineage"]["kind"] == "average" and cfg["lineage"]["sources"] == status["sources"]
    assert cfg["lora"]["r"] == 8 and cfg["lora"]["alpha"] == 16  # the stacked adapter: rank 2 x 4, same scale
    # the exported adapter holds the exact mean of the two checkpoints' updates, and their mean head
    states = [read_weights(p) for p in status["sources"]]
    adapter = load_file(str(out / "exports" / "adapter" / "adapter_model.safetensors"))
    a_key = next(k for k in adapter if "lora_A" in k)
    b_key = a_key.replace("lora_A", "lora_B")
    src_a = next(k for k in states[0] if k.endswith(a_key.removeprefix("base_model.model.").replace(
        ".weight", ".default.weight")))
    src_b = src_a.replace("lora_A", "lora_B")
    mean_update = sum(s[src_b] @ s[src_a] for s in states) / 2
    assert torch.allclose(adapter[b_key] @ adapter[a_key], mean_update, atol=1e-6)
    assert (out / "exports" / "merged" / "config.json").exists()
    assert [e["kind"] for e in _read(out, "events.jsonl")][-2:] == ["test", "end"]
    assert len(_read(out, "predictions.jsonl")) == 8
    # the console's reader and the report read it
    reader = RunReader(out)
    reader.poll()
    assert reader.state() == "finished" and reader.summary["test"]["n"] == 8
    assert "test PER" in done.stdout
    report = _kidconsole("report", out, "--vs", source_run, "--format", "md", "--bootstrap", "50")
    assert report.returncode == 0 and "PER" in report.stdout, report.stderr


def test_ensemble_of_checkpoints_is_a_run_readable_by_the_report(source_run):
    from kidconsole.runs.reader import RunReader

    done = _kidconsole("run", "ensemble", source_run, "--best", "2", "--name", "ens")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = source_run.parent / "ens"
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "finished" and status["derived"] == "ensemble" and len(status["sources"]) == 2
    assert yaml.safe_load((out / "config.yaml").read_text())["lineage"]["kind"] == "ensemble"
    assert len(_read(out, "predictions.jsonl")) == 8
    reader = RunReader(out)
    reader.poll()
    assert reader.state() == "finished" and reader.summary["test"]["n"] == 8
    report = _kidconsole("report", out, "--format", "md", "--bootstrap", "50")
    assert report.returncode == 0 and "PER" in report.stdout, report.stderr


def test_ensemble_of_one_model_decodes_as_that_model(source_run):
    """Two copies of one run: the mean of identical posteriors is the posterior, so the hypotheses match."""
    import shutil

    twin = source_run.parent / "src-twin"
    shutil.copytree(source_run, twin)
    done = _kidconsole("run", "ensemble", source_run, twin, "--name", "ens-twins")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ens = {r["id"]: r["hyp"] for r in _read(source_run.parent / "ens-twins", "predictions.jsonl")}
    own = {r["id"]: r["hyp"] for r in _read(source_run, "predictions.jsonl")}
    assert ens == own


def test_average_refuses_a_run_without_enough_checkpoints(source_run):
    done = _kidconsole("run", "average", source_run, "--best", "50")
    assert done.returncode == 2 and "not 50" in done.stderr


async def test_the_run_detail_key_averages_the_best_checkpoints_into_a_new_card(source_run, tmp_path):
    import asyncio
    import shutil

    from kidconsole.tui.app import KidConsole
    from kidconsole.tui.screens.confirm import ConfirmScreen
    from kidconsole.tui.screens.run_detail import RunDetailScreen

    root = tmp_path / "runs"
    shutil.copytree(source_run, root / "src")
    app = KidConsole([str(root)], interval=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(100):
            if app.views:
                break
            await pilot.pause(0.05)
        (key,) = app.views
        app.open_detail(key)
        await pilot.pause(0.2)
        assert isinstance(app.screen, RunDetailScreen)
        await pilot.press("a")
        await pilot.pause(0.2)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        new = None
        for _ in range(1200):  # the job runs detached: its card appears, then it finishes
            new = next((v for v in app.views.values() if v.name == "src-avg-best3"), None)
            if new is not None and new.state == "finished":
                break
            await asyncio.sleep(0.1)
            await pilot.pause()
        assert new is not None and new.state == "finished", new
    status = json.loads((root / "src-avg-best3" / "status.json").read_text())
    assert status["derived"] == "average" and len(status["sources"]) == 3
