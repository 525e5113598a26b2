"""Checkpoint averaging and ensembles: the arithmetic, and the runs they write (read by the report and the
console's reader like any run)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from kidconsole import rundir
from trainers.average import DELTAS, FACTORS, average_states, lora_gap

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

@pytest.fixture(scope="module")
def source_run(tmp_path_factory, tiny_run_config, train_to_end) -> Path:
    """A finished LoRA run (new head: trained, saved with the adapter) with 4 scored checkpoints in its last
    phase."""
    from trainers.tiny import build_tiny, tone_corpus

    root = tmp_path_factory.mktemp("average")
    tones = tone_corpus(root / "tones", n_train=24, n_valid=6, n_test=8)
    base = build_tiny(root / "base", hidden=32, layers=1)
    cfg = tiny_run_config(base, tones, name="src", seed=5, model__start="encoder", data__max_batch_utterances=8,
                          data__num_workers=0,
                          train={"log_every": 2, "eval_every": 2, "keep_last": 4, "heartbeat_seconds": 5.0},
                          phases=[{"name": "only", "epochs": 2, "lr": 5.0e-3, "warmup": 1}])
    (root / "runs").mkdir()
    return train_to_end(cfg, root / "run.yaml", root / "runs" / "src")


def _read(run: Path, name: str) -> list[dict]:
    return [json.loads(ln) for ln in (run / name).read_text(encoding="utf-8").splitlines() if ln.strip()]


def _derive(kidconsole, kind: str, source_run: Path, *args: str, name: str, sources: int):
    """``kidconsole run KIND SOURCE ARGS --name NAME``: the new run beside the source, finished and scored on
    the 8 test utterances, its lineage in its status and config, readable by the console's reader."""
    from kidconsole.runs.reader import RunReader

    done = kidconsole("run", kind, source_run, *args, "--name", name)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = source_run.parent / name
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "finished" and status["derived"] == kind and len(status["sources"]) == sources
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["lineage"]["kind"] == kind and cfg["lineage"]["sources"] == status["sources"]
    assert [e["kind"] for e in _read(out, "events.jsonl")][-2:] == ["test", "end"]
    assert len(_read(out, "predictions.jsonl")) == 8
    reader = RunReader(out)
    reader.poll()
    assert reader.state() == "finished" and reader.summary["test"]["n"] == 8
    return done, out, status, cfg


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


def test_average_run_is_scored_exported_and_readable_like_any_run(source_run, kidconsole):
    from safetensors.torch import load_file

    from trainers.checkpoint import read_weights

    done, out, status, cfg = _derive(kidconsole, "average", source_run, "--last", "2", name="avg", sources=2)
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
    assert "test PER" in done.stdout
    # the report reads it
    report = kidconsole("report", out, "--vs", source_run, "--format", "md", "--bootstrap", "50")
    assert report.returncode == 0 and "PER" in report.stdout, report.stderr


def test_ensemble_of_checkpoints_is_a_run_readable_by_the_report(source_run, kidconsole):
    _, out, _, _ = _derive(kidconsole, "ensemble", source_run, "--best", "2", name="ens", sources=2)
    report = kidconsole("report", out, "--format", "md", "--bootstrap", "50")
    assert report.returncode == 0 and "PER" in report.stdout, report.stderr


def test_ensemble_of_one_model_decodes_as_that_model(source_run, kidconsole):
    """Two copies of one run: the mean of identical posteriors is the posterior, so the hypotheses match."""
    import shutil

    twin = source_run.parent / "src-twin"
    shutil.copytree(source_run, twin)
    done = kidconsole("run", "ensemble", source_run, twin, "--name", "ens-twins")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ens = {r["id"]: r["hyp"] for r in _read(source_run.parent / "ens-twins", "predictions.jsonl")}
    own = {r["id"]: r["hyp"] for r in _read(source_run, "predictions.jsonl")}
    assert ens == own


def test_average_refuses_a_run_without_enough_checkpoints(source_run, kidconsole):
    done = kidconsole("run", "average", source_run, "--best", "50")
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


# ---- what the derived runs refuse -------------------------------------------------------------------------

def _lower_rank(src: Path, dst: Path, rank: int) -> None:
    """A copy of checkpoint ``src`` whose LoRA factors keep their first ``rank`` ranks (a checkpoint of a run of
    that rank, as far as its tensors go)."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(src, dst)
    state = load_file(str(dst / "model.safetensors"))
    state = {k: (v[:rank].contiguous() if ".lora_A." in k else v[:, :rank].contiguous() if ".lora_B." in k else v)
             for k, v in state.items()}
    save_file(state, str(dst / "model.safetensors"))


def test_average_refuses_checkpoints_of_different_lora_ranks_naming_them(source_run, tmp_path, kidconsole):
    run = tmp_path / "runs" / "src"
    shutil.copytree(source_run, run)
    newest = rundir.last_phase_checkpoints(run)[-1]  # the source has one phase
    _lower_rank(Path(newest["path"]), run / rundir.CHECKPOINTS / "step-00000099", 2)
    events = rundir.EventWriter(run / rundir.EVENTS)
    events.emit(rundir.EV_CHECKPOINT, step=99, phase=1, name="step-00000099",
                path=str(run / rundir.CHECKPOINTS / "step-00000099"), best=False, metric=newest["metric"])
    events.close()
    done = kidconsole("run", "average", run, "--last", "2", "--name", "mixed")
    assert done.returncode != 0
    out = done.stdout + done.stderr
    assert "RuntimeError" not in out and "size of tensor" not in out, out[-3000:]
    assert "LoRA ranks" in out and "step-00000099 (r=2)" in out and f"{Path(newest['path']).name} (r=4)" in out, \
        out[-3000:]


def test_average_refuses_a_step_given_twice(source_run, kidconsole):
    steps = [c["step"] for c in rundir.last_phase_checkpoints(source_run)]
    done = kidconsole("run", "average", source_run, "--steps", f"{steps[0]},{steps[0]},{steps[1]}", "--name", "twice")
    assert done.returncode == 2 and f"step {steps[0]} given twice" in done.stderr, done.stderr[-2000:]
    assert not (source_run.parent / "twice").exists()


def test_the_averager_refuses_a_checkpoint_given_twice(source_run, tmp_path):
    from trainers.average import main as average_main

    first = rundir.last_phase_checkpoints(source_run)[0]["path"]
    out = tmp_path / "twice"
    assert average_main([str(source_run), "--run-dir", str(out), "--checkpoint", first, "--checkpoint", first]) != 0
    assert "given twice" in rundir.read_status(out)["error"]


def test_an_ensemble_of_a_run_with_itself_is_refused(source_run, kidconsole):
    done = kidconsole("run", "ensemble", source_run, source_run, "--name", "self")
    assert done.returncode == 2 and "given twice" in done.stderr, done.stderr[-2000:]
    assert not (source_run.parent / "self").exists()
