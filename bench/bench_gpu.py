"""GPU training figures: XLS-R 300M's geometry (random weights) with the pilot config's LoRA, bf16, on the
pilot's duration batches (``batch_seconds`` 160, at most 32 utterances of up to 20 s), one GPU and two under
DDP; and the reference's fixed batch of 8 (its 5-6 it/s). ``python -m bench gpu`` (on the CPU it says so
and stops; ``--cpu-check`` runs the same code on the tiny model, for the tests).

Per setting: optimizer steps a second, utterances a second, audio hours per GPU-hour, peak GPU memory,
and each step split into data (padding and copy to the device), forward, backward and optimizer, every
part timed between device synchronisations. Durations are drawn from 1-12 s (children's read speech);
waveforms are noise: the figures are speed, never accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SR = 16000
REFERENCE = "5-6 it/s at batch 8 (reference, one GPU)"


def _pilot():
    """The pilot config's model, LoRA and data sections (its manifests are not needed here)."""
    import yaml

    from kidconsole.config import LoraSection, ModelSection

    raw = yaml.safe_load((REPO / "configs" / "pilot_148h.yaml").read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as base:  # the section checks that its base is a model folder
        (Path(base) / "config.json").write_text("{}")
        model = ModelSection(**{**raw["model"], "base": base})
    return model, LoraSection(**raw["lora"]), raw["data"]


def _model(tiny: bool):
    import torch
    from transformers import Wav2Vec2ForCTC

    from trainers.model import configure, xlsr_300m_config
    from trainers.tiny import tiny_config

    model_cfg, lora_cfg, _ = _pilot()
    torch.manual_seed(0)
    if tiny:  # the check on the CPU: two layers, so LoRA's "8-23" becomes every layer
        model_cfg = model_cfg.model_copy(update={"freeze_layers": None})
        lora_cfg = lora_cfg.model_copy(update={"layers": None})
        return configure(Wav2Vec2ForCTC(tiny_config()), model_cfg, lora_cfg)
    return configure(Wav2Vec2ForCTC(xlsr_300m_config()), model_cfg, lora_cfg)


def _plans(data: dict, steps: int, batch8: bool, seed: int, rank: int, world: int) -> list[list[float]]:
    """Each step's utterance durations: the pilot's duration batches, or 8 utterances of the mean length."""
    import numpy as np

    from trainers.batching import plan_epoch, shard

    rng = np.random.default_rng(seed)
    durations = np.clip(rng.gamma(4.0, 1.1, size=20000) + 1.0, 1.0, min(12.0, data["max_seconds"])).tolist()
    if batch8:
        mean = float(np.mean(durations))
        return [[mean] * 8 for _ in range(steps)]
    from kidconsole.config import DataSection

    bucket = data.get("bucket_utterances", DataSection.model_fields["bucket_utterances"].default)
    plan = plan_epoch(durations, seed=seed, epoch=0, batch_seconds=data["batch_seconds"],
                      max_utts=data["max_batch_utterances"], bucket=bucket)
    mine = shard(plan, rank, world)
    return [[durations[i] for i in b] for b in mine[:steps]]


def measure(steps: int, warmup: int, batch8: bool, tiny: bool) -> dict:
    """This process's share of the timings (under ``accelerate launch`` for DDP)."""
    import numpy as np
    import torch
    from accelerate import Accelerator

    from trainers.tokenizer import build_feature_extractor

    _, _, data = _pilot()
    acc = Accelerator(mixed_precision="bf16" if acc_cuda() else "no", cpu=not acc_cuda())
    model = _model(tiny)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model, optimizer = acc.prepare(model, optimizer)
    model.train()
    fe = build_feature_extractor()
    rng = np.random.default_rng(acc.process_index)
    plans = _plans(data, steps + warmup, batch8, 1234, acc.process_index, acc.num_processes)
    cuda = acc.device.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize(acc.device)
        return time.perf_counter()

    if cuda:
        torch.cuda.reset_peak_memory_stats(acc.device)
    parts = {"data": [], "forward": [], "backward": [], "optimizer": []}
    utts = audio = 0.0
    wall0 = None
    for i, durs in enumerate(plans):
        if i == warmup:
            wall0 = sync()
        t0 = sync()
        waves = [rng.standard_normal(int(d * SR)).astype(np.float32) * 0.1 for d in durs]
        feats = fe(waves, sampling_rate=SR, padding=True, return_attention_mask=True, return_tensors="pt")
        frames = int(model.module._get_feat_extract_output_lengths(torch.tensor(feats.input_values.shape[1]))
                     if hasattr(model, "module") else
                     model._get_feat_extract_output_lengths(torch.tensor(feats.input_values.shape[1])))
        labels = torch.randint(1, 40, (len(durs), max(1, frames // 4)))
        batch = {"input_values": feats.input_values.to(acc.device, non_blocking=True),
                 "attention_mask": feats.attention_mask.to(acc.device, non_blocking=True),
                 "labels": labels.to(acc.device, non_blocking=True)}
        t1 = sync()
        with acc.autocast():
            loss = model(**batch).loss.float()
        t2 = sync()
        acc.backward(loss)
        t3 = sync()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        t4 = sync()
        if i >= warmup:
            for k, (a, b) in zip(parts, ((t0, t1), (t1, t2), (t2, t3), (t3, t4))):
                parts[k].append(b - a)
            utts += len(durs)
            audio += sum(durs)
    wall = sync() - wall0
    peak = torch.cuda.max_memory_allocated(acc.device) if cuda else None
    out = {"rank": acc.process_index, "world": acc.num_processes, "steps": steps, "wall": wall, "utts": utts,
           "audio_s": audio, "peak": peak, **{k: statistics.median(v) for k, v in parts.items()},
           "device": torch.cuda.get_device_name(acc.device) if cuda else "cpu"}
    results = acc.gather_for_metrics([out]) if acc.num_processes > 1 else [out]
    return {"ranks": results}


def acc_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _row(label: str, res: dict) -> dict:
    ranks = res["ranks"]
    world = ranks[0]["world"]
    wall = max(r["wall"] for r in ranks)
    steps = ranks[0]["steps"]
    utts, audio = sum(r["utts"] for r in ranks), sum(r["audio_s"] for r in ranks)
    return {"setting": label, "GPUs": world, "it/s": steps / wall, "samples/s": utts / wall,
            "audio h / GPU-h": audio / wall / world, "utts/step": utts / steps / world,
            "peak GB": max((r["peak"] or 0) for r in ranks) / 2**30,
            **{f"{k} ms": 1000 * statistics.mean(r[k] for r in ranks) for k in ("data", "forward", "backward",
                                                                                 "optimizer")},
            "device": ranks[0]["device"]}


def _ddp(args, label: str, batch8: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ddp.json"
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "bf16", "--dynamo_backend", "no", "-m", "bench.bench_gpu",
               "--worker", str(out), "--steps", str(args.steps), "--warmup", str(args.warmup)]
        cmd += ["--batch8"] if batch8 else []
        subprocess.run(cmd, cwd=REPO, check=True)
        return _row(label, json.loads(out.read_text()))


def main(argv: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    ap = argparse.ArgumentParser(prog="python -m bench gpu", description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=30, help="timed steps per setting (30)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first (5)")
    ap.add_argument("--cpu-check", action="store_true", help="the tiny model on the CPU: checks the code, no figures")
    ap.add_argument("--worker", metavar="OUT", help=argparse.SUPPRESS)
    ap.add_argument("--batch8", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:  # one DDP process
        res = measure(args.steps, args.warmup, args.batch8, tiny=False)
        if int(os.environ.get("RANK", "0")) == 0:
            Path(args.worker).write_text(json.dumps(res))
        return
    console = Console()
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if not gpus and not args.cpu_check:
        console.print("bench gpu: skipped: no CUDA GPU here (torch.cuda.is_available() is False). "
                      "Run `python -m bench gpu` on a GPU machine; `--cpu-check` runs the code on the tiny model.")
        return
    tiny = not gpus
    rows = [_row("pilot duration batches", measure(args.steps, args.warmup, False, tiny)),
            _row("batch of 8", measure(args.steps, args.warmup, True, tiny))]
    if gpus >= 2:
        rows += [_ddp(args, "pilot duration batches, DDP", False), _ddp(args, "batch of 8, DDP", True)]
    title = ("tiny model on the CPU (a code check, not figures)" if tiny else
             f"XLS-R 300M geometry, pilot LoRA (r=16, q/k/v, layers 8-23), bf16, {rows[0]['device']}")
    table = Table(title=title, caption=f"compare: {REFERENCE}" + ("" if gpus >= 2 else "; DDP rows need 2 GPUs"))
    cols = [c for c in rows[0] if c != "device"]
    for c in cols:
        table.add_column(c, justify="left" if c == "setting" else "right")
    for r in rows:
        table.add_row(*(f"{r[c]:.2f}" if isinstance(r[c], float) else str(r[c]) for c in cols))
    Console(width=max(console.width, 200)).print(table)  # whole when piped to a file


if __name__ == "__main__":
    main(sys.argv[1:])
