"""Hugging Face Trainer output folders: trainer_state.json into our series, the same as its TensorBoard events;
a half-written, oversized or foreign state is said, never raised."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from kidconsole.runs.hf_state import MAX_STATE_BYTES, HfStateTail, checkpoints, newest_state
from kidconsole.runs.tfevents import TensorBoardTail

# a real Trainer on a tiny regression model: it logs every step, evaluates and saves every 4 steps and
# reports to TensorBoard, as the reference's train_all_phases*.py scripts do at their own scale
TRAINER = textwrap.dedent("""
    import sys, torch
    from torch import nn
    from transformers import Trainer, TrainingArguments

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 1)

        def forward(self, x, labels=None):
            out = self.lin(x).squeeze(-1)
            return {"loss": ((out - labels) ** 2).mean(), "logits": out}

    class Data(torch.utils.data.Dataset):
        def __init__(self, n):
            self.x = torch.randn(n, 4, generator=torch.Generator().manual_seed(0))
            self.y = self.x.sum(-1)
        def __len__(self):
            return len(self.x)
        def __getitem__(self, i):
            return {"x": self.x[i], "labels": self.y[i]}

    args = TrainingArguments(output_dir=sys.argv[1], max_steps=12, per_device_train_batch_size=4, logging_steps=1,
                             eval_strategy="steps", eval_steps=4, save_steps=4, report_to=["tensorboard"],
                             use_cpu=True, learning_rate=1e-2, disable_tqdm=True, metric_for_best_model="loss",
                             load_best_model_at_end=True)
    trainer = Trainer(model=Tiny(), args=args, train_dataset=Data(64), eval_dataset=Data(16))
    trainer.train()
    trainer.save_state()
""")


@pytest.fixture(scope="module")
def hf_output(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hf") / "out"
    done = subprocess.run([sys.executable, "-c", TRAINER, str(out)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.mark.slow
def test_a_trainers_state_and_its_tensorboard_events_give_the_same_series(hf_output):
    hf = HfStateTail(hf_output)
    assert hf.poll() and hf.error is None
    st = hf.state
    assert (st.global_step, st.max_steps, st.logging_steps, st.eval_steps, st.train_batch_size) == (12, 12, 1, 4, 4)
    assert st.evaluations == 3 and st.eval_seconds > 0 and st.train_runtime > 0
    assert st.best_model_checkpoint.endswith("checkpoint-" + str(st.best_global_step))
    assert [s for s, _ in checkpoints(hf_output)] == [4, 8, 12]
    tb = TensorBoardTail(hf_output)
    assert tb.poll() > 0 and not tb.corrupt_files
    for key in ("train/loss", "train/lr", "train/grad_norm", "train/epoch", "eval/loss", "eval/runtime"):
        a, b = hf.scalars.by["step"][key], tb.scalars.by["step"][key]
        assert list(a.x) == list(b.x), key
        np.testing.assert_allclose(a.y, b.y, rtol=1e-6, err_msg=key)  # TensorBoard keeps float32
    assert list(hf.scalars.by["step"]["eval/loss"].x) == [4, 8, 12]
    assert hf.poll() is False  # nothing newer


def test_the_newest_state_wins_and_is_read_again_only_when_it_changes(tmp_path):
    def state(folder: Path, steps: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        history = [{"loss": 1.0 / s, "learning_rate": 1e-4, "epoch": s / 10, "step": s} for s in range(1, steps + 1)]
        history.append({"eval_loss": 0.5, "eval_per": 0.3, "eval_runtime": 2.5, "epoch": 0.1, "step": steps})
        (folder / "trainer_state.json").write_text(json.dumps(
            {"global_step": steps, "max_steps": 100, "log_history": history}))

    state(tmp_path / "checkpoint-5", 5)
    tail = HfStateTail(tmp_path)
    assert tail.poll() and tail.state.global_step == 5
    assert set(tail.scalars.by["step"]) == {"train/loss", "train/lr", "train/epoch", "eval/loss", "eval/per",
                                             "eval/runtime"}
    assert tail.poll() is False
    state(tmp_path / "checkpoint-10", 10)
    os.utime(tmp_path / "checkpoint-10" / "trainer_state.json", ns=(2 * 10**18, 2 * 10**18))
    assert newest_state(tmp_path) == tmp_path / "checkpoint-10" / "trainer_state.json"
    assert tail.poll() and tail.state.global_step == 10 and len(tail.scalars.by["step"]["train/loss"]) == 10
    assert tail.state.eval_seconds == 2.5 and tail.state.evaluations == 1


def test_a_half_written_state_keeps_the_last_reading_and_is_tried_again_when_it_changes(tmp_path):
    path = tmp_path / "trainer_state.json"
    good = json.dumps({"global_step": 2, "log_history": [{"loss": 1.0, "step": 1}, {"loss": 0.5, "step": 2}]})
    path.write_text(good)
    tail = HfStateTail(tmp_path)
    assert tail.poll()
    path.write_text(good[: len(good) // 2])
    assert tail.poll() is False and "not JSON" in tail.error and tail.state.global_step == 2
    path.write_text(good.replace('"global_step": 2', '"global_step": 3'))
    assert tail.poll() and tail.error is None and tail.state.global_step == 3


def test_foreign_oversized_and_odd_entries_are_said_not_raised(tmp_path, monkeypatch):
    path = tmp_path / "trainer_state.json"
    path.write_text(json.dumps({"not": "a trainer"}))
    tail = HfStateTail(tmp_path)
    assert tail.poll() is False and "no log_history" in tail.error
    path.write_text(json.dumps({"log_history": [{"loss": 1.0, "step": 1}, "junk", {"loss": "nan?", "step": 2},
                                                {"loss": float("inf"), "step": 3}, {"loss": 2.0}]}))
    assert tail.poll() and tail.state.entries == 3 and tail.state.skipped == 4
    monkeypatch.setattr("kidconsole.runs.hf_state.MAX_STATE_BYTES", 10)
    path.write_text(json.dumps({"log_history": []}) + " ")
    assert tail.poll() is False and "over the 10-byte limit" in tail.error
    assert MAX_STATE_BYTES >= 60 << 20
