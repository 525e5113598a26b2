"""Trainer benchmarks on the tiny model and the tone corpus (CPU):
our training step vs a bare PyTorch step on the same model and batches,
loader throughput vs a bare soundfile read loop, padding with duration
batches vs fixed-size random batches, evaluation time with length-sorted
vs unsorted batches. ``python -m bench trainer``."""

from __future__ import annotations

import copy
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from rich.console import Console
from rich.table import Table


def _config(tmp: Path, model: Path, corpus: dict) -> dict:
    from kidconsole.config import resolve_config

    return resolve_config({
        "model": {"base": str(model), "freeze_feature_encoder": False},
        "lora": {"r": 8, "alpha": 16, "dropout": 0.0},
        "data": {"train_manifest": str(corpus["train"]), "valid_manifest": str(corpus["valid"]),
                 "max_seconds": 4.0, "batch_seconds": 8.0, "max_batch_utterances": 16, "num_workers": 0,
                 "eval_batch_seconds": 8.0},
        "train": {"log_every": 10 ** 6, "eval_every": 10 ** 6},
        "phases": [{"lr": 1e-3}],
    }, "bench", tmp)


def _step_times(cfg, run_dir, batches, steps):
    from accelerate import Accelerator

    from trainers.loop import Trainer
    from trainers.model import configure, load_base
    from trainers.report import Reporter
    from trainers.signals import StopRequest
    from trainers.tokenizer import build_processor

    acc = Accelerator(cpu=True)
    model, new = load_base(cfg["model"])
    bare_model = configure(copy.deepcopy(model), cfg["model"], cfg["lora"], new)
    model = configure(model, cfg["model"], cfg["lora"], new)
    tr = Trainer(cfg, run_dir, acc, model, build_processor(), new, Reporter(run_dir, False), StopRequest(60))
    tr.phase_totals = [steps]
    tr.total_steps = steps
    tr.model.train()  # as _train_epoch does (from_pretrained returns eval mode)

    def ours(b):
        tr._micro_step(b, tr.state["step"], 1, True)
        tr._optimizer_step(0)

    opt = torch.optim.AdamW([p for p in bare_model.parameters() if p.requires_grad], lr=1e-3)
    bare_model.train()

    def bare(b):
        loss = bare_model(input_values=b.input_values, attention_mask=b.attention_mask, labels=b.labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(bare_model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    out = {}
    for _ in range(2):  # interleaved rounds: both see the same machine load
        for name, fn in (("ours", ours), ("bare", bare)):
            for b in batches[:3]:
                fn(b)
            t = []
            for b in batches[:steps]:
                t0 = time.perf_counter()
                fn(b)
                t.append(time.perf_counter() - t0)
            out.setdefault(name, []).extend(t)
    return statistics.median(out["ours"]), statistics.median(out["bare"])


def _loader_rate(rows, plan, workers):
    from trainers.data import BatchStream, make_loader
    from trainers.tokenizer import build_feature_extractor

    stream = BatchStream(rows, plan, feature_extractor=build_feature_extractor(), kernels=(10, 4, 4),
                         strides=(5, 4, 4), sample_rate=16000, max_seconds=10.0)
    t0 = time.perf_counter()
    n = sum(len(b) for b in make_loader(stream, workers))
    return n / (time.perf_counter() - t0)


def _bare_read_rate(rows):
    t0 = time.perf_counter()
    for r in rows:
        sf.read(r.audio, dtype="float32")
    return len(rows) / (time.perf_counter() - t0)


def _eval_seconds(cfg, run_dir, rows, sorted_batches: bool):
    from accelerate import Accelerator

    from kidconsole.phonemes import vocab
    from trainers.batching import plan_random, plan_sorted
    from trainers.data import BatchStream, make_loader
    from trainers.evaluate import evaluate
    from trainers.model import load_base
    from trainers.tokenizer import build_feature_extractor

    acc = Accelerator(cpu=True)
    model, _ = load_base(cfg["model"])
    durations = [r.duration for r in rows]
    if sorted_batches:
        plan = plan_sorted(durations, batch_seconds=1e9, max_utts=16)
    else:
        plan = plan_random(durations, seed=0, epoch=0, batch_size=16)
    stream = BatchStream(rows, plan, feature_extractor=build_feature_extractor(), kernels=(10, 4, 4),
                         strides=(5, 4, 4), sample_rate=16000, max_seconds=10.0)
    refs = {r.id: r.phones for r in rows}
    inv = {i: t for t, i in vocab().items()}
    evaluate(model, make_loader(stream, 0), acc, inv, refs)  # warm-up
    t = [evaluate(model, make_loader(stream, 0), acc, inv, refs).seconds for _ in range(3)]
    return statistics.median(t)


def main(argv: list[str]) -> None:
    from trainers.batching import padding_fraction, plan_epoch, plan_random
    from trainers.data import load_rows
    from trainers.tiny import build_tiny, tone_corpus

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = build_tiny(tmp / "model")
        corpus = tone_corpus(tmp / "tones", n_train=192, n_valid=96, n_test=0)
        cfg = _config(tmp, model, corpus)
        rows = load_rows(corpus["train"])
        durations = [r.duration for r in rows]
        plan = plan_epoch(durations, seed=0, epoch=0, batch_seconds=8.0, max_utts=16, bucket=256)

        from trainers.data import BatchStream
        from trainers.tokenizer import build_feature_extractor

        stream = BatchStream(rows, plan, feature_extractor=build_feature_extractor(), kernels=(10, 4, 4),
                             strides=(5, 4, 4), sample_rate=16000, max_seconds=10.0)
        batches = [stream.load(k) for k in range(len(plan))]
        ours, bare = _step_times(cfg, tmp / "run", batches, 20)

        # an epoch long enough that starting the workers does not dominate
        many = rows * 10
        many_plan = plan_epoch([r.duration for r in many], seed=0, epoch=0, batch_seconds=8.0, max_utts=16,
                               bucket=256)
        bare_rate = _bare_read_rate(many)
        rate1 = _loader_rate(many, many_plan, 1)
        rate2 = _loader_rate(many, many_plan, 2)

        # padding on a realistic spread of utterance lengths (children's read speech, 1-15 s)
        spread = list(np.clip(np.random.default_rng(0).lognormal(1.2, 0.55, 20000), 0.5, 15.0))
        dur_plan = plan_epoch(spread, seed=0, epoch=0, batch_seconds=160.0, max_utts=64, bucket=2000)
        mean_size = round(len(spread) / len(dur_plan))
        pad_dur = padding_fraction(dur_plan, spread)
        pad_rand = padding_fraction(plan_random(spread, seed=0, epoch=0, batch_size=mean_size), spread)

        valid = load_rows(corpus["valid"])
        ev_sorted = _eval_seconds(cfg, tmp / "run", valid, True)
        ev_random = _eval_seconds(cfg, tmp / "run", valid, False)

    table = Table(title=f"trainer (tiny model, CPU, {os.cpu_count()} cores)")
    for col in ("measure", "ours", "reference", "ratio", "target"):
        table.add_column(col)
    table.add_row("train step (median ms)", f"{ours * 1e3:.1f}", f"{bare * 1e3:.1f} bare PyTorch",
                  f"{ours / bare:.2f}x", "<= 1.10x")
    table.add_row("loader, 1 worker (utt/s)", f"{rate1:.0f}", f"{bare_rate:.0f} bare soundfile",
                  f"{rate1 / bare_rate:.0%}", ">= 70%")
    table.add_row("loader, 2 workers (utt/s)", f"{rate2:.0f}", f"{bare_rate:.0f} bare soundfile",
                  f"{rate2 / bare_rate:.0%}", ">= 70%")
    table.add_row("padding (20k utts, 0.5-15 s)", f"{pad_dur:.1%} duration batches",
                  f"{pad_rand:.1%} random batches of {mean_size}", "", "< 10%")
    table.add_row("eval, 96 utts (s)", f"{ev_sorted:.2f} length-sorted", f"{ev_random:.2f} unsorted",
                  f"{ev_sorted / ev_random:.2f}x", "")
    Console().print(table)


if __name__ == "__main__":
    main([])
