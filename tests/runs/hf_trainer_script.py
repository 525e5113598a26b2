"""A real Hugging Face Trainer fine-tuning the tiny Wav2Vec2ForCTC (trainers/tiny.py) on the tone corpus, as the
reference's train_all_phases*.py scripts do at their scale: logs every step, evaluates (loss and PER) and
saves every few steps, reports to TensorBoard.

``python hf_trainer_script.py MODEL TRAIN_MANIFEST VALID_MANIFEST OUTPUT_DIR MAX_STEPS [GATE]``: with GATE, it
waits once it logged step GATE_STEP (after a checkpoint) until the file GATE exists, having written GATE.waiting, so a test
can look at the folder while the Trainer is in the middle of training.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from transformers import Trainer, TrainerCallback, TrainingArguments, Wav2Vec2ForCTC, Wav2Vec2Processor

from kidconsole.audio import read_audio
from kidconsole.manifest import read_manifest
from kidconsole.metrics import error_rates
from kidconsole.phonemes import PAD, vocab

GATE_STEP = 12
EVERY = 5  # steps between evaluations and checkpoints


def rows(manifest: str, processor, ids: dict[str, int]) -> list[dict]:
    out = []
    for u in read_manifest(manifest):
        wave, sr = read_audio(u.audio)
        out.append({"input_values": processor(wave, sampling_rate=sr).input_values[0],
                    "labels": [ids[p] for p in u.phones.split()]})
    return out


def collate(batch: list[dict]) -> dict:
    width = max(len(b["input_values"]) for b in batch)
    values = torch.zeros(len(batch), width)
    mask = torch.zeros(len(batch), width, dtype=torch.long)
    longest = max(len(b["labels"]) for b in batch)
    labels = torch.full((len(batch), longest), -100, dtype=torch.long)
    for i, b in enumerate(batch):
        values[i, :len(b["input_values"])] = torch.as_tensor(b["input_values"])
        mask[i, :len(b["input_values"])] = 1
        labels[i, :len(b["labels"])] = torch.as_tensor(b["labels"])
    return {"input_values": values, "attention_mask": mask, "labels": labels}


class Gate(TrainerCallback):
    def __init__(self, gate: Path):
        self.gate = gate

    def on_log(self, args, state, control, logs=None, **kw):
        # after the reporting callbacks (the Trainer runs a script's callbacks last): step GATE_STEP is written
        if state.global_step == GATE_STEP and "loss" in (logs or {}):
            Path(f"{self.gate}.waiting").touch()
            end = time.monotonic() + 300
            while not self.gate.exists() and time.monotonic() < end:
                time.sleep(0.1)


def main() -> None:
    model_dir, train_m, valid_m, out, max_steps = sys.argv[1:6]
    gate = Path(sys.argv[6]) if len(sys.argv) > 6 else None
    torch.manual_seed(0)
    processor = Wav2Vec2Processor.from_pretrained(model_dir)
    ids = vocab()
    names = {i: p for p, i in ids.items()}

    def per(pred) -> dict:
        logits, labels = pred.predictions, pred.label_ids
        hyps, refs = [], []
        for row, ref in zip(np.argmax(logits, -1), labels):
            collapsed = [int(t) for k, t in enumerate(row) if (k == 0 or t != row[k - 1]) and t != ids[PAD]]
            hyps.append(" ".join(names[t] for t in collapsed))
            refs.append(" ".join(names[int(t)] for t in ref if t >= 0))
        return {"per": error_rates(refs, hyps)["per"]}

    args = TrainingArguments(
        output_dir=out, max_steps=int(max_steps), per_device_train_batch_size=4, per_device_eval_batch_size=4,
        learning_rate=1e-3, warmup_steps=2, logging_steps=1, eval_strategy="steps", eval_steps=EVERY,
        save_steps=EVERY, save_total_limit=3, metric_for_best_model="per", greater_is_better=False,
        load_best_model_at_end=True, report_to=["tensorboard"], use_cpu=True, disable_tqdm=True,
        dataloader_num_workers=0, seed=0)
    trainer = Trainer(model=Wav2Vec2ForCTC.from_pretrained(model_dir), args=args, data_collator=collate,
                      train_dataset=rows(train_m, processor, ids), eval_dataset=rows(valid_m, processor, ids),
                      compute_metrics=per, callbacks=[Gate(gate)] if gate else [])
    trainer.train()
    trainer.save_state()


if __name__ == "__main__":
    main()
