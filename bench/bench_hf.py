"""kidconsole's trainer against two Hugging Face ``Trainer`` paths, on the same tiny model (LoRA r=8),
the same utterances (1-15 s, 5.8 s mean) and the same CPU (one intra-op thread):

- reference: the fine-tuning report's own path: an ``IterableDataset`` over per-utterance label JSON
  files (globbed at start), each decoded and normalised by the feature extractor as it is read,
  ``num_workers=0``, a fixed batch of 8 in file order, a CTC padding collator, HF ``Trainer``;
- recipe: the HF CTC fine-tuning recipe (``run_speech_recognition_ctc.py``): the whole set decoded
  and normalised before training (the recipe's ``datasets.map``; here into memory, ``datasets`` is
  not a dependency), a map-style dataset, the padding collator, ``group_by_length``, ``Trainer``;
- ours: ``trainers.loop.Trainer`` as a run uses it (duration batches of at most 8), its loading in the
  process too (``data.num_workers: 0``; a run loads in workers, on other cores).

Figures (CPU seconds of the process, see CLOCK): training utterances a second over the whole second
epoch (the first is the warm-up; evaluation excluded), padded share of that epoch's batches, evaluation
time over the same
validation set (loss and PER / CER / WER, 3 rounds, median) and the time from a resume mid-epoch (a
checkpoint at half the epoch) to the first new step, model load included, less one median step.
``python -m bench hf [--quick]``.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from rich.console import Console
from rich.table import Table
from torch.utils.data import Dataset, IterableDataset

BATCH = 8
# CPU seconds of this process: every path does all its work in it, on one thread, so the figures do not
# swing with the load other processes put on a shared machine (wall time did, 10x between runs)
CLOCK = time.process_time
# two epochs, the second timed whole: every utterance once on every path. A window of steps would not be
# fair: HF's length-grouped sampler puts its longest batch first, where a warm-up window leaves it out
EPOCHS = 2


def _model(cfg):
    from trainers.model import configure, load_base

    base = load_base(cfg.model)
    torch.manual_seed(0)  # the same LoRA initialisation on every path
    return configure(base.model, cfg.model, cfg.lora, base.head), base.processor


def _labels(phones: str) -> list[int]:
    from kidconsole.phonemes import vocab

    table = vocab()
    return [table[p] for p in phones.split()]


# ---------- the two Hugging Face paths ----------

class LabelFiles(IterableDataset):
    """The reference's loader: the label files globbed at start, each utterance read as it comes."""

    def __init__(self, folder: Path, feature_extractor):
        self.files = sorted(glob.glob(str(folder / "*.json")))
        self.fe = feature_extractor

    def __iter__(self):
        for f in self.files:
            label = json.loads(Path(f).read_text(encoding="utf-8"))
            wave, sr = sf.read(label["audio"], dtype="float32")
            values = self.fe(wave, sampling_rate=sr).input_values[0]
            yield {"input_values": values, "labels": _labels(label["phones"])}


class Preprocessed(Dataset):
    """The recipe's dataset: every utterance decoded and normalised before training."""

    def __init__(self, rows, feature_extractor):
        self.items = []
        for r in rows:
            wave, sr = sf.read(r.audio, dtype="float32")
            self.items.append({"input_values": feature_extractor(wave, sampling_rate=sr).input_values[0],
                               "labels": _labels(r.phones)})

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


class PadCollator:
    """The recipe's ``DataCollatorCTCWithPadding``; counts the padded share of what it collates."""

    def __init__(self, processor):
        self.processor = processor
        self.real = self.padded = 0
        self.counting = True

    def __call__(self, features):
        batch = self.processor.feature_extractor.pad([{"input_values": f["input_values"]} for f in features],
                                                     padding=True, return_tensors="pt")
        labels = self.processor.tokenizer.pad([{"input_ids": f["labels"]} for f in features], padding=True,
                                              return_tensors="pt")
        batch["labels"] = labels["input_ids"].masked_fill(labels["attention_mask"].ne(1), -100)
        if self.counting:
            self.real += sum(len(f["input_values"]) for f in features)
            self.padded += batch["input_values"].numel()
        return batch


def _per_metrics(processor):
    from trainers.evaluate import rates

    def compute(pred):
        ids = np.argmax(pred.predictions, axis=-1)
        hyps = processor.tokenizer.batch_decode(ids)
        labels = np.where(pred.label_ids == -100, processor.tokenizer.pad_token_id, pred.label_ids)
        refs = processor.tokenizer.batch_decode(labels, group_tokens=False)
        return {k: v for k, v in rates(refs, hyps).items() if v is not None}
    return compute


def _hf_run(cfg, out: Path, train_set, eval_set, *, steps: int, group_by_length: bool, save_at: int,
            resume: str | None = None, stop_after_first: bool = False):
    """One HF ``Trainer`` over ``train_set``; returns ((CPU seconds, real and padded samples collated so
    far) at the first epoch's start and each step's end, collator, trainer)."""
    from transformers import Trainer, TrainerCallback, TrainingArguments

    model, processor = _model(cfg)
    collator = PadCollator(processor)
    marks: list[tuple[float, int, int]] = []

    class Marks(TrainerCallback):
        def on_epoch_begin(self, args, state, control, **kw):
            if not marks:  # the start of the first epoch (model, optimizer and loader made)
                marks.append((CLOCK(), 0, 0))

        def on_step_end(self, args, state, control, **kw):  # before a checkpoint of this step: as ours
            marks.append((CLOCK(), collator.real, collator.padded))
            if stop_after_first:
                control.should_training_stop = True

    args = TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=BATCH, per_device_eval_batch_size=BATCH,
        learning_rate=1e-3, warmup_steps=1, lr_scheduler_type="linear", max_grad_norm=1.0, weight_decay=0.0,
        max_steps=steps, logging_steps=10 ** 6, save_strategy="steps", save_steps=save_at, report_to=[],
        use_cpu=True, dataloader_num_workers=0, remove_unused_columns=False, label_names=["labels"],
        train_sampling_strategy="group_by_length" if group_by_length else "random", seed=1234,
        disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=train_set, eval_dataset=eval_set,
                      data_collator=collator, processing_class=processor.feature_extractor,
                      compute_metrics=_per_metrics(processor), callbacks=[Marks()])
    trainer.train(resume_from_checkpoint=resume)
    return marks, collator, trainer


def _hf_eval_seconds(trainer, collator, rounds: int) -> list[float]:
    collator.counting = False
    trainer.evaluate()  # warm-up
    out = []
    for _ in range(rounds):
        t = CLOCK()
        trainer.evaluate()
        out.append(CLOCK() - t)
    return out


# ---------- ours ----------

def _ours_trainer(cfg, run_dir: Path, marks: list, stop_after_first: bool = False):
    from accelerate import Accelerator

    from trainers.loop import Trainer
    from trainers.report import Reporter
    from trainers.signals import StopRequest

    class StopAfterFirst(StopRequest):  # the resume is timed to its first new step, as the HF paths'
        @property
        def requested(self) -> bool:
            return stop_after_first and len(marks) > 1  # after the start mark, the first step

    class Marked(Trainer):
        def _train_epoch(self, *args):
            if not marks:  # the start of the first epoch (model, optimizer and loader made)
                marks.append((CLOCK(), 0))
            return super()._train_epoch(*args)

        def _log(self, pi):  # after each step (log_every 1): (CPU seconds, utterances trained on)
            super()._log(pi)
            marks.append((CLOCK(), self.state["samples"]))

    model, processor = _model(cfg)
    return Marked(cfg, run_dir, Accelerator(cpu=True), model, processor, False, Reporter(run_dir, True),
                  StopAfterFirst(600))


def _ours(cfg, run_dir: Path, rounds: int) -> dict:
    from kidconsole import rundir
    from trainers.batching import padding_fraction
    from trainers.evaluate import evaluate

    marks: list[tuple[float, int]] = []
    tr = _ours_trainer(cfg, run_dir, marks)
    durations = [r.duration for r in tr.phase_rows(0)]
    steps = len(tr._plan(0, 0, durations))  # of the first epoch
    tr.t.save_every = steps // 2
    assert tr.run(None) == rundir.FINISHED
    train = marks[steps:]  # from the end of the first epoch to the end of the second
    step_s = statistics.median(b[0] - a[0] for a, b in zip(train, train[1:]))
    sps = (train[-1][1] - train[0][1]) / (train[-1][0] - train[0][0])
    first = marks[steps][1] / (marks[steps][0] - marks[0][0])
    padding = padding_fraction(tr._plan(0, EPOCHS - 1, durations), durations)
    refs = {r.id: r.phones for r in tr.valid_rows}
    evaluate(tr.forward, tr._eval_loader(tr.valid_rows, ""), tr.inverse_vocab, refs, accelerator=tr.acc)
    ev = []
    for _ in range(rounds):
        t = CLOCK()
        evaluate(tr.forward, tr._eval_loader(tr.valid_rows, ""), tr.inverse_vocab, refs, accelerator=tr.acc)
        ev.append(CLOCK() - t)
    # resume from the mid-epoch checkpoint, as a restarted run does
    mid = rundir.checkpoint_name(tr.t.save_every)
    for c in (run_dir / rundir.CHECKPOINTS).iterdir():
        if c.name != mid:
            shutil.rmtree(c)
    again: list[tuple[float, int]] = []
    t0 = CLOCK()
    tr2 = _ours_trainer(cfg, run_dir, again, stop_after_first=True)
    tr2.resume(run_dir / rundir.CHECKPOINTS / mid)
    assert tr2.run(str(run_dir / rundir.CHECKPOINTS / mid)) == rundir.STOPPED
    return {"steps": steps, "sps": sps, "first": first, "step_s": step_s, "padding": padding, "eval": ev,
            "resume": again[1][0] - t0, "skipped": tr.t.save_every}


def main(argv: list[str]) -> None:
    from kidconsole.config import resolve_config
    from trainers.data import load_rows
    from trainers.tiny import build_tiny

    from bench.bench_trainer import _spread_corpus

    quick = "--quick" in argv
    torch.set_num_threads(1)  # as bench trainer: two threads on a shared 2-core machine swing 4x
    n_train, n_valid, rounds = (64, 16, 1) if quick else (128, 32, 3)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = build_tiny(tmp / "model")
        train_m = _spread_corpus(tmp / "train", n_train, seed=1, mu=1.7, sigma=0.5, seconds=(1.0, 15.0))
        valid_m = _spread_corpus(tmp / "valid", n_valid, seed=2, mu=1.7, sigma=0.5, seconds=(1.0, 15.0))
        cfg = resolve_config({
            "seed": 1234,
            "model": {"base": str(model), "freeze_feature_encoder": False},
            "lora": {"r": 8, "alpha": 16, "dropout": 0.0},
            "data": {"train_manifest": str(train_m), "valid_manifest": str(valid_m), "max_seconds": 16.0,
                     "batch_seconds": BATCH * 16.0, "max_batch_utterances": BATCH, "num_workers": 0,
                     "eval_batch_seconds": 160.0},
            "train": {"log_every": 1, "eval_every": 10 ** 6, "keep_last": 100, "weight_decay": 0.0},
            "phases": [{"lr": 1e-3, "warmup": 1, "augment": "none", "epochs": EPOCHS}],
        }, "bench", tmp)
        rows, valid = load_rows(str(train_m)), load_rows(str(valid_m))
        labels = tmp / "labels"  # the reference's layout: one label file per utterance
        for split, part in (("train", rows), ("valid", valid)):
            (labels / split).mkdir(parents=True)
            for r in part:
                (labels / split / f"{r.id}.json").write_text(json.dumps({"audio": r.audio, "phones": r.phones}))
        steps = -(-len(rows) // BATCH)
        ours = _ours(cfg, tmp / "ours", rounds)

        fe = _model(cfg)[1].feature_extractor
        res = {}
        for name in ("reference", "recipe"):
            ref = name == "reference"

            def datasets():
                if ref:  # evaluation reads its label files the same way
                    return LabelFiles(labels / "train", fe), LabelFiles(labels / "valid", fe)
                return Preprocessed(rows, fe), Preprocessed(valid, fe)

            t = CLOCK()
            train_set, eval_set = datasets()
            prep = CLOCK() - t
            out = tmp / name
            marks, collator, trainer = _hf_run(cfg, out, train_set, eval_set, steps=EPOCHS * steps,
                                               group_by_length=not ref, save_at=steps // 2)
            (t_a, real_a, pad_a), (t_b, real_b, pad_b) = marks[steps], marks[-1]  # the second epoch
            sps = len(rows) / (t_b - t_a)
            first = len(rows) / (t_a - marks[0][0])
            ev = _hf_eval_seconds(trainer, collator, rounds)
            t0 = CLOCK()  # a new process: the datasets again (the recipe preprocesses again)
            train_set, eval_set = datasets()
            marks2, _, _ = _hf_run(cfg, tmp / f"{name}-resume", train_set, eval_set, steps=EPOCHS * steps,
                                   group_by_length=not ref, save_at=10 ** 6,
                                   resume=str(out / f"checkpoint-{steps // 2}"), stop_after_first=True)
            times = [m[0] for m in marks[steps:]]
            step_s = statistics.median(y - x for x, y in zip(times, times[1:]))
            res[name] = {"sps": sps, "first": first, "step_s": step_s, "padding": 1 - (real_b - real_a) / (pad_b - pad_a),
                         "eval": ev, "resume": marks2[1][0] - t0, "prep": prep}

    table = Table(title=f"trainer vs HF Trainer (tiny model, CPU, {os.cpu_count()} cores, 1 thread; "
                        f"{len(rows)} train / {len(valid)} validation utterances, "
                        f"{np.mean([r.duration for r in rows]):.1f} s mean)")
    for col in ("measure", "ours", "reference path", "HF CTC recipe", "ours vs ref / recipe", "target"):
        table.add_column(col)
    o_ev = statistics.median(ours["eval"])
    r_ev, c_ev = (statistics.median(res[n]["eval"]) for n in ("reference", "recipe"))
    table.add_row("training, utt/s, second epoch", f"{ours['sps']:.1f}", f"{res['reference']['sps']:.1f}",
                  f"{res['recipe']['sps']:.1f}",
                  f"{ours['sps'] / res['reference']['sps']:.2f}x / {ours['sps'] / res['recipe']['sps']:.2f}x",
                  ">= 1.5x / >= 1.2x")
    table.add_row("training, utt/s, first epoch (warm-up in it)", f"{ours['first']:.1f}",
                  f"{res['reference']['first']:.1f}", f"{res['recipe']['first']:.1f}",
                  f"{ours['first'] / res['reference']['first']:.2f}x / {ours['first'] / res['recipe']['first']:.2f}x",
                  "")
    table.add_row("padded share of the second epoch's batches", f"{ours['padding']:.1%}",
                  f"{res['reference']['padding']:.1%}", f"{res['recipe']['padding']:.1%}", "", "")
    table.add_row(f"evaluation, {len(valid)} utts, s", f"{o_ev:.2f}", f"{r_ev:.2f}", f"{c_ev:.2f}",
                  f"{r_ev / o_ev:.2f}x / {c_ev / o_ev:.2f}x faster", ">= 2x / -")
    # to the end of the first new step, less that path's median step: the resume's own cost
    o_res, r_res, c_res = (d["resume"] - d["step_s"] for d in (ours, res["reference"], res["recipe"]))
    table.add_row(f"resume at step {ours['skipped']} of {ours['steps']}: seconds before the first new step",
                  f"{o_res:.2f}", f"{r_res:.2f} (reads {steps // 2} batches)",
                  f"{c_res:.2f} (preprocesses again)", f"{r_res / o_res:.1f}x / {c_res / o_res:.1f}x faster",
                  "seconds")
    table.add_row("median training step, s", f"{ours['step_s']:.2f}", f"{res['reference']['step_s']:.2f}",
                  f"{res['recipe']['step_s']:.2f}", "", "")
    table.add_row("preprocessing before step 1, s", "0", "0", f"{res['recipe']['prep']:.2f}", "", "")
    Console(width=max(Console().width, 140)).print(table)



if __name__ == "__main__":
    main([])
