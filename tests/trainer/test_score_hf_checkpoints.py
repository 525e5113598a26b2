"""A Hugging Face checkpoint scored as a baseline with one command (``python -m trainers.score --model DIR``):
a Trainer's checkpoint-N (the full model) or a PEFT adapter merged into its base; anything else is refused
saying what was expected."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kidconsole.report.summary import report_for
from trainers.score import main as score_main

SCRIPT = Path(__file__).resolve().parents[1] / "runs" / "hf_trainer_script.py"


def score(run: Path, model: Path, manifest: Path, *extra: str) -> int:
    return score_main(["--model", str(model), "--manifest", str(manifest), "--run-dir", str(run), *extra])


def scored(run: Path) -> dict:
    (test,) = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines() if '"kind":"test"' in x]
    return test


def lora_adapter(tiny_model: Path, out: Path) -> Path:
    """A PEFT LoRA adapter of the tiny model (as a Trainer with a PEFT model saves one), its updates non-zero."""
    from peft import LoraConfig, get_peft_model
    from transformers import Wav2Vec2ForCTC

    torch.manual_seed(1)
    model = get_peft_model(Wav2Vec2ForCTC.from_pretrained(str(tiny_model)),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    model.save_pretrained(str(out))
    merged = model.merge_and_unload()
    merged.save_pretrained(str(out.parent / "merged"))
    return out


@pytest.mark.slow
def test_a_trainer_checkpoint_scores_as_a_baseline_that_reports_compare(tmp_path, tiny_model, tones):
    out = tmp_path / "hf"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(SCRIPT), str(tiny_model), str(tones["train"]), str(tones["valid"]),
                           str(out), "5"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert score(tmp_path / "base", tiny_model, tones["test"]) == 0
    assert score(tmp_path / "ckpt", out / "checkpoint-5", tones["test"]) == 0
    test = scored(tmp_path / "ckpt")
    assert test["n"] == 8 and 0 <= test["per"]
    rep = report_for(tmp_path / "ckpt", tmp_path / "base", n_boot=10)
    assert rep.n == 8 and rep.comparison is not None
    # the output folder itself is no model: the error names its checkpoints
    assert score(tmp_path / "whole", out, tones["test"]) == 1
    error = json.loads((tmp_path / "whole" / "status.json").read_text())["error"]
    assert "a training's output folder, not a model" in error and "checkpoint-5" in error


def test_a_peft_adapter_scores_as_its_base_with_the_adapter_merged(tmp_path, tiny_model, tones):
    adapter = lora_adapter(tiny_model, tmp_path / "adapter")
    assert score(tmp_path / "adapter-run", adapter, tones["test"]) == 0
    assert score(tmp_path / "merged-run", tmp_path / "merged", tones["test"]) == 0
    a, m = scored(tmp_path / "adapter-run"), scored(tmp_path / "merged-run")
    assert a["per"] == m["per"] and a["n"] == m["n"] == 8
    hyps = lambda run: [json.loads(x)["hyp"] for x in (run / "predictions.jsonl").read_text().splitlines()]  # noqa: E731
    assert hyps(tmp_path / "adapter-run") == hyps(tmp_path / "merged-run")


def test_an_adapter_whose_base_lies_elsewhere_says_so_and_takes_base(tmp_path, tiny_model, tones):
    adapter = lora_adapter(tiny_model, tmp_path / "adapter")
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = "/data/models/somewhere-else"
    (adapter / "adapter_config.json").write_text(json.dumps(cfg))
    assert score(tmp_path / "lost", adapter, tones["test"]) == 1
    error = json.loads((tmp_path / "lost" / "status.json").read_text())["error"]
    assert "the PEFT adapter's base cannot be loaded" in error and "--base" in error
    assert score(tmp_path / "found", adapter, tones["test"], "--base", str(tiny_model)) == 0


def test_a_folder_that_holds_no_model_is_a_clear_error(tmp_path, tones):
    (tmp_path / "empty").mkdir()
    assert score(tmp_path / "run", tmp_path / "empty", tones["test"]) == 1
    error = json.loads((tmp_path / "run" / "status.json").read_text())["error"]
    assert "neither a saved model (config.json and its weights" in error and "nor a PEFT adapter" in error
