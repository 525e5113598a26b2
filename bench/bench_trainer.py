"""Trainer benchmarks on the tiny model (CPU, one intra-op thread):
our training step vs a bare PyTorch step on the same model and batches,
loader throughput vs a bare soundfile read loop over the same files (in the
process, and through 1 and 2 DataLoader workers; short tone utterances and
utterances of the corpus's mean length), padding with duration
batches vs fixed-size random batches, evaluation time with length-sorted vs
unsorted batches on utterances of 0.5-12 s. ``python -m bench trainer``.

Timings interleave ours and the reference (step by step, round by round) so
both see the same machine load, and report the median over rounds with the
spread (min-max) of the per-round ratios."""

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
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

SR = 16000


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


def _stream(rows, plan, max_seconds=10.0):
    from trainers.data import BatchStream
    from trainers.tokenizer import build_feature_extractor

    return BatchStream(rows, plan, feature_extractor=build_feature_extractor(), kernels=(10, 4, 4),
                       strides=(5, 4, 4), sample_rate=SR, max_seconds=max_seconds)


def _spread(ratios: list[float]) -> str:
    return f"{min(ratios):.2f}-{max(ratios):.2f}"


# ---------- training step ----------

def _step_times(cfg, run_dir, batches, steps: int, rounds: int):
    """Per round: the summed time of ``steps`` steps, ours and bare alternating step by step."""
    from accelerate import Accelerator

    from trainers.loop import Trainer
    from trainers.model import configure, load_base
    from trainers.report import Reporter
    from trainers.signals import StopRequest

    acc = Accelerator(cpu=True)
    base = load_base(cfg.model)
    # two copies of one base: both start alike
    ours_model = configure(copy.deepcopy(base.model), cfg.model, cfg.lora, base.head)
    bare_model = configure(copy.deepcopy(base.model), cfg.model, cfg.lora, base.head)
    tr = Trainer(cfg, run_dir, acc, ours_model, base.processor, False, Reporter(run_dir, False), StopRequest(60))
    tr.phase_totals = [10 ** 9]
    tr.total_steps = 10 ** 9
    tr.model.train()  # as _train_epoch does (from_pretrained returns eval mode)

    def ours(b):
        tr._micro_step(b, tr.state.step, 1, True)
        tr._optimizer_step(0)

    # the same work by hand: forward, CTC loss, backward, clipping, AdamW, a learning rate per step
    opt = torch.optim.AdamW([p for p in bare_model.parameters() if p.requires_grad], lr=1e-3,
                            weight_decay=cfg.train.weight_decay)
    bare_params = [p for p in bare_model.parameters() if p.requires_grad]
    bare_model.train()

    def bare(b):
        for g in opt.param_groups:
            g["lr"] = 1e-3
        loss = bare_model(input_values=b.input_values, attention_mask=b.attention_mask, labels=b.labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(bare_params, cfg.train.max_grad_norm)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for b in batches[:3]:  # warm-up
        ours(b)
        bare(b)
    per_round = []
    for r in range(rounds):
        t = {"ours": 0.0, "bare": 0.0}
        for k in range(steps):
            b = batches[(r * steps + k) % len(batches)]
            order = (("ours", ours), ("bare", bare)) if k % 2 else (("bare", bare), ("ours", ours))
            for name, fn in order:
                t0 = time.perf_counter()
                fn(b)
                t[name] += time.perf_counter() - t0
        per_round.append((t["ours"] / steps, t["bare"] / steps))
    return per_round


# ---------- loader ----------

class _BareReads(IterableDataset):
    """The reference: the same batches of files read with soundfile to float32, nothing else; a batch
    leaves the worker as one array (one shared-memory transfer, as our batch's audio)."""

    def __init__(self, rows, plan):
        self.rows, self.plan = rows, plan

    def __iter__(self):
        info = get_worker_info()
        wid, n = (info.id, info.num_workers) if info else (0, 1)
        for k in range(wid, len(self.plan), n):
            yield np.concatenate([sf.read(self.rows[i].audio, dtype="float32")[0] for i in self.plan[k]])


def _rate(iterable_factory, n_utts: int) -> float:
    t0 = time.perf_counter()
    for _ in iterable_factory():
        pass
    return n_utts / (time.perf_counter() - t0)


def _loader_rates(rows, plan, rounds: int, max_seconds: float = 10.0) -> dict[int, list[tuple[float, float]]]:
    """{workers: [(ours, bare) utt/s per round]}; workers 0 is the loop in the process."""
    from trainers.data import make_loader

    n = sum(map(len, plan))
    stream = _stream(rows, plan, max_seconds)
    bare = _BareReads(rows, plan)
    out: dict[int, list[tuple[float, float]]] = {0: [], 1: [], 2: []}
    for _ in range(rounds):
        for w in out:
            # ours includes making the model's inputs (the mask is built from the lengths there)
            if w == 0:
                ours = _rate(lambda: (stream.load(k).inputs("cpu") for k in range(len(plan))), n)
                ref = _rate(lambda: iter(bare), n)
            else:
                ours = _rate(lambda: (b.inputs("cpu") for b in make_loader(stream, w, wait_bound=120.0)), n)
                ref = _rate(lambda: DataLoader(bare, batch_size=None, num_workers=w, prefetch_factor=4), n)
            out[w].append((ours, ref))
    return out


# ---------- evaluation ----------

def _spread_corpus(root: Path, n: int, seed: int = 0, mu: float = 1.1, sigma: float = 0.7,
                   seconds: tuple[float, float] = (0.5, 12.0)) -> Path:
    """``n`` utterances of lognormal durations (as read speech; by default 0.5-12 s): tones plus noise,
    phones to match."""
    from kidconsole.manifest import Utterance, write_manifest
    from trainers.tiny import TONE_PHONES

    rng = np.random.default_rng(seed)
    (root / "wav").mkdir(parents=True, exist_ok=True)
    rows = []
    for k, dur in enumerate(np.clip(rng.lognormal(mu, sigma, n), *seconds)):
        samples = int(dur * SR)
        t = np.arange(samples) / SR
        wave = (0.3 * np.sin(2 * np.pi * 330 * t) + rng.normal(0, 0.05, samples)).astype(np.float32)
        path = root / "wav" / f"s{k:04d}.wav"
        sf.write(path, wave, SR)
        phones = " ".join(str(rng.choice(TONE_PHONES)) for _ in range(max(1, int(dur * 4))))
        rows.append(Utterance(id=f"s{k:04d}", audio=str(path), duration=samples / SR, sample_rate=SR,
                              speaker="spk", split="validation", text="", phones=phones))
    write_manifest(root / "spread.jsonl", rows)
    return root / "spread.jsonl"


def _eval_times(cfg, rows, rounds: int, batch_seconds: float, max_utts: int):
    from accelerate import Accelerator

    from kidconsole.phonemes import vocab
    from trainers.batching import padding_fraction, plan_random, plan_sorted
    from trainers.data import make_loader
    from trainers.evaluate import TorchForward, evaluate
    from trainers.model import load_base
    from trainers.tokenizer import build_feature_extractor

    acc = Accelerator(cpu=True)
    model = load_base(cfg.model).model
    forward = TorchForward(model, build_feature_extractor(), acc)
    durations = [r.duration for r in rows]
    sorted_plan = plan_sorted(durations, batch_seconds=batch_seconds, max_utts=max_utts)
    size = round(len(rows) / len(sorted_plan))  # random batches of the same mean size
    random_plan = plan_random(durations, seed=0, epoch=0, batch_size=size)
    refs = {r.id: r.phones for r in rows}
    inv = {i: t for t, i in vocab().items()}
    streams = {"sorted": _stream(rows, sorted_plan, 13.0), "random": _stream(rows, random_plan, 13.0)}
    for s in streams.values():
        evaluate(forward, make_loader(s, 0), inv, refs, accelerator=acc)  # warm-up
    times = {"sorted": [], "random": []}
    for _ in range(rounds):
        for name, s in streams.items():
            times[name].append(evaluate(forward, make_loader(s, 0), inv, refs, accelerator=acc).seconds)
    pads = (padding_fraction(sorted_plan, durations), padding_fraction(random_plan, durations))
    return times, pads, size


def main(argv: list[str]) -> None:
    from trainers.batching import padding_fraction, plan_epoch, plan_random
    from trainers.data import load_rows
    from trainers.tiny import build_tiny, tone_corpus

    quick = "--quick" in argv  # main(["--quick"]): fewer rounds, for a look while editing
    # one intra-op thread: two on a shared 2-core machine oversubscribe and swing 4x between runs
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = build_tiny(tmp / "model")
        corpus = tone_corpus(tmp / "tones", n_train=192, n_valid=8, n_test=0)
        cfg = _config(tmp, model, corpus)
        rows = load_rows(corpus["train"])
        durations = [r.duration for r in rows]
        plan = plan_epoch(durations, seed=0, epoch=0, batch_seconds=8.0, max_utts=16, bucket=256)
        stream = _stream(rows, plan)
        batches = [stream.load(k) for k in range(len(plan))]
        step_rounds = _step_times(cfg, tmp / "run", batches, steps=6 if quick else 12, rounds=3 if quick else 7)

        # epochs long enough that starting the workers does not dominate: the short tone utterances
        # (per-utterance costs weigh most) and utterances of the corpus's own mean length (3,500 h in
        # 1.99 M utterances: 6.3 s) in the pilot config's batches (160 s, up to 32 utterances)
        loader = {}
        many = rows * (3 if quick else 10)
        many_plan = plan_epoch([r.duration for r in many], seed=0, epoch=0, batch_seconds=8.0, max_utts=16,
                               bucket=256)
        loader["0.3-1.2 s"] = _loader_rates(many, many_plan, rounds=2 if quick else 5)
        long_rows = load_rows(_spread_corpus(tmp / "long", 96 if quick else 192, seed=1, mu=1.7, sigma=0.5,
                                             seconds=(1.0, 15.0)))
        many = long_rows * (2 if quick else 4)
        many_plan = plan_epoch([r.duration for r in many], seed=0, epoch=0, batch_seconds=160.0, max_utts=32,
                               bucket=256)
        loader[f"{np.mean([r.duration for r in long_rows]):.1f} s mean"] = _loader_rates(
            many, many_plan, rounds=2 if quick else 5, max_seconds=16.0)

        # padding on a realistic spread of utterance lengths (children's read speech, 1-15 s)
        spread = list(np.clip(np.random.default_rng(0).lognormal(1.2, 0.55, 20000), 0.5, 15.0))
        dur_plan = plan_epoch(spread, seed=0, epoch=0, batch_seconds=160.0, max_utts=64, bucket=2000)
        mean_size = round(len(spread) / len(dur_plan))
        pad_dur = padding_fraction(dur_plan, spread)
        pad_rand = padding_fraction(plan_random(spread, seed=0, epoch=0, batch_size=mean_size), spread)

        ev_rows = load_rows(_spread_corpus(tmp / "spread", 24 if quick else 64))
        ev_audio = sum(r.duration for r in ev_rows)
        ev_times, (ev_pad_sorted, ev_pad_random), ev_size = _eval_times(cfg, ev_rows, 2 if quick else 3, 60.0, 16)

    table = Table(title=f"trainer (tiny model, CPU, {os.cpu_count()} cores, 1 thread)")
    for col in ("measure", "ours", "reference", "ratio (spread)", "target"):
        table.add_column(col)
    ours_ms = statistics.median(o for o, _ in step_rounds) * 1e3
    bare_ms = statistics.median(b for _, b in step_rounds) * 1e3
    ratios = [o / b for o, b in step_rounds]
    table.add_row(f"train step, ms ({len(step_rounds)} rounds)", f"{ours_ms:.1f}", f"{bare_ms:.1f} bare PyTorch",
                  f"{statistics.median(ratios):.3f}x ({_spread(ratios)})", "<= 1.10x")
    for lengths, rates in loader.items():
        for w, label in ((0, "in the process"), (1, "1 worker"), (2, "2 workers")):
            pairs = rates[w]
            r = [o / b for o, b in pairs]
            table.add_row(f"loader, {lengths} utts, {label} (utt/s)", f"{statistics.median(o for o, _ in pairs):.0f}",
                          f"{statistics.median(b for _, b in pairs):.0f} bare soundfile",
                          f"{statistics.median(r):.0%} ({min(r):.0%}-{max(r):.0%})", ">= 70%")
    table.add_row("padding (20k utts, 0.5-15 s)", f"{pad_dur:.1%} duration batches",
                  f"{pad_rand:.1%} random batches of {mean_size}", "", "< 10%")
    s_med, r_med = statistics.median(ev_times["sorted"]), statistics.median(ev_times["random"])
    er = [s / r for s, r in zip(ev_times["sorted"], ev_times["random"])]
    table.add_row(f"eval, {len(ev_rows)} utts 0.5-12 s ({ev_audio:.0f} s audio), s",
                  f"{s_med:.2f} length-sorted ({ev_pad_sorted:.0%} padding)",
                  f"{r_med:.2f} unsorted, batches of {ev_size} ({ev_pad_random:.0%} padding)",
                  f"{statistics.median(er):.2f}x ({_spread(er)})", "")
    Console(width=max(Console().width, 124)).print(table)  # the table's width, also when piped


if __name__ == "__main__":
    main([])
