"""End-to-end runs of the trainer on the tiny model and the tone corpus."""

import json
import os
import signal
import time

import numpy as np
import pytest
import soundfile as sf
import torch

from kidconsole.manifest import read_manifest, write_manifest
from trainers.train import main as train_main


@pytest.mark.slow
def test_two_phases_lower_the_loss_and_the_exports_load(make_config, tmp_path, tones, tiny_model, rd):
    config = make_config(model__start="encoder", phases=[
        {"name": "first", "fraction": 0.5, "epochs": 3, "lr": 1.0e-2, "warmup": 2},
        {"name": "second", "epochs": 3, "lr": 5.0e-3, "warmup": 2, "augment": "weak"},
    ])
    run = tmp_path / "run"
    proc = rd.launch(config, run)
    assert proc.wait(timeout=400) == 0, (run / "stdout.log").read_text()[-3000:]
    st = rd.status(run)
    assert st["state"] == "finished" and st["exit_code"] == 0 and st["step"] == st["total_steps"]
    assert [e["phase"] for e in rd.events(run, "phase")] == [1, 2]
    losses = [e["loss"] for e in rd.events(run, "train")]
    assert np.mean(losses[-3:]) < 0.9 * np.mean(losses[:3])
    evals = rd.events(run, "eval")
    assert evals[-1]["loss"] < evals[0]["loss"]
    assert all(0 <= e["eval_share"] < 1 and e["eval_seconds"] > 0 for e in evals)
    assert rd.events(run, "test")[0]["n"] == 8
    preds = [json.loads(x) for x in (run / "predictions.jsonl").read_text().splitlines()]
    assert {p["id"] for p in preds} == {r.id for r in read_manifest(tones["test"])}
    assert {"speaker", "age", "snr", "duration", "ref", "hyp"} <= preds[0].keys()
    decodes = (run / "decodes.jsonl").read_text().splitlines()
    assert decodes and {"step", "id", "ref", "hyp"} <= json.loads(decodes[0]).keys()

    from peft import PeftModel
    from transformers import Wav2Vec2ForCTC, pipeline

    wave, _ = sf.read(next(read_manifest(tones["test"])).audio, dtype="float32")
    asr = pipeline("automatic-speech-recognition", model=str(run / "exports" / "merged"), device="cpu")
    text = asr(wave)["text"]
    from kidconsole.phonemes import vocab
    assert set(text.split()) <= set(vocab())

    merged = Wav2Vec2ForCTC.from_pretrained(run / "exports" / "merged").eval()
    base = Wav2Vec2ForCTC.from_pretrained(tiny_model)
    adapted = PeftModel.from_pretrained(base, run / "exports" / "adapter").eval()
    x = torch.from_numpy((wave - wave.mean()) / (wave.std() + 1e-7))[None]
    with torch.no_grad():
        assert torch.allclose(adapted(x).logits, merged(x).logits, atol=1e-4)


def test_early_stopping_keeps_the_best_checkpoint(make_config, tmp_path, rd):
    # no later evaluation can beat the first by min_delta: patience 2 ends the phase after 3 evaluations
    config = make_config(train__eval_every=1, train__keep_last=1, data__test_manifest=None,
                         phases=[{"epochs": 5, "lr": 1.0e-3, "patience": 2, "min_delta": 1.0e9}])
    run = tmp_path / "run"
    assert train_main(["--config", str(config), "--run-dir", str(run)]) == 0
    evals = rd.events(run, "eval")
    assert [e["best"] for e in evals] == [True, False, False]
    # every evaluation also scores the validation sample by age group and SNR bucket (the tone corpus: known ages)
    assert all(e["per_age"] and e["per_snr"] and all(0 <= v for v in e["per_age"].values()) for e in evals)
    assert rd.status(run)["step"] == 3 < rd.events(run, "start")[0]["total_steps"]
    kept = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert kept == ["step-00000001", "step-00000003"]  # the best survives keep_last=1
    assert all((run / "checkpoints" / k / "COMPLETE").exists() for k in kept)


@pytest.mark.slow
def test_sigterm_stops_cleanly_and_resume_sees_the_same_batches(make_config, tmp_path, rd):
    phases = [{"name": "a", "fraction": 0.5, "epochs": 2, "lr": 2.0e-3, "warmup": 1, "augment": "weak"},
              {"name": "b", "epochs": 2, "lr": 1.0e-3, "warmup": 1, "augment": "medium"}]
    config = make_config(train__trace_batches=True, train__eval_every=4, data__test_manifest=None, phases=phases)
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert rd.launch(config, whole).wait(timeout=400) == 0

    proc = rd.launch(config, cut)
    rd.wait_for(lambda: any(e["step"] >= 5 for e in rd.events(cut, "train")), 300, "step 5")
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGTERM)  # as the runs manager stops a run: the whole process group
    proc.wait(timeout=120)  # the accelerate launcher itself dies of the signal; the trainer carries on
    rd.wait_for(lambda: rd.status(cut).get("state") in ("stopped", "failed", "finished"), 60, "a final state")
    assert time.monotonic() - t0 < 60
    st = rd.status(cut)
    assert st["state"] == "stopped" and st["exit_code"] == 0, st
    assert rd.events(cut, "end")[-1]["reason"] == "stopped by SIGTERM"
    stopped_at = st["step"]
    assert stopped_at < rd.events(whole, "end")[0]["step"]
    assert (cut / "checkpoints" / f"step-{stopped_at:08d}" / "COMPLETE").exists()

    assert rd.launch(config, cut, "--resume").wait(timeout=400) == 0
    assert rd.status(cut)["state"] == "finished"
    assert rd.events(cut, "start")[-1]["resumed_from"].endswith(f"step-{stopped_at:08d}")

    def trace(run):
        return [json.loads(x) for x in (run / "trace.rank0.jsonl").read_text().splitlines()]

    assert trace(cut) == trace(whole)
    loss = {e["step"]: e["loss"] for e in rd.events(whole, "train")}
    resumed = {e["step"]: e["loss"] for e in rd.events(cut, "train") if e["step"] > stopped_at}
    assert resumed and all(abs(resumed[s] - loss[s]) < 1e-3 * max(1.0, abs(loss[s])) for s in resumed)


def _with_bad_rows(tmp_path, tones, n_bad):
    rows = list(read_manifest(tones["train"]))
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(300, dtype=np.float32), 16000)
    for k in range(n_bad):
        bad = rows[k]
        bad.audio = str(tmp_path / "missing.wav") if k % 2 else str(short)
    path = tmp_path / "train_bad.jsonl"
    write_manifest(path, rows)
    return path


def test_bad_samples_are_skipped_and_counted(make_config, tmp_path, tones, rd):
    config = make_config(data__train_manifest=str(_with_bad_rows(tmp_path, tones, 2)), data__max_bad_share=0.2,
                         data__test_manifest=None)
    run = tmp_path / "run"
    assert train_main(["--config", str(config), "--run-dir", str(run)]) == 0
    warnings = [e for e in rd.events(run, "warning") if e["what"] == "bad_sample"]
    assert sorted(e["id"] for e in warnings) == ["train-0000", "train-0001"]
    assert max(e["count"] for e in warnings) == 2
    assert rd.status(run)["state"] == "finished"


def test_too_many_bad_samples_fail_the_run_with_the_reason(make_config, tmp_path, tones, rd):
    config = make_config(data__train_manifest=str(_with_bad_rows(tmp_path, tones, 10)), data__max_bad_share=0.05)
    run = tmp_path / "run"
    assert train_main(["--config", str(config), "--run-dir", str(run)]) == 1
    st = rd.status(run)
    assert st["state"] == "failed" and "data.max_bad_share" in st["error"]
    assert rd.events(run, "end")[-1]["state"] == "failed"
