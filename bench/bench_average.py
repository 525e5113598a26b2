"""Checkpoint averaging and ensembles against the best single checkpoint, on the tiny model and tone corpus
(CPU): a base fully trained on tones, adapted with LoRA to faster ones (evaluated and checkpointed every 5
steps); then the average of its 3 best checkpoints (LoRA updates averaged exactly, and A / B averaged as factors), and the ensemble of the same 3.
Each is compared with the run (its best checkpoint) on the test manifest: PER and the speaker-bootstrap 95%
interval of the difference (``kidconsole report RUN --vs SOURCE``). ``python -m bench average``
(``--keep DIR``: keep the runs there)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _run(*argv) -> None:
    done = subprocess.run([sys.executable, *map(str, argv)], cwd=REPO, env=ENV, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(map(str, argv))} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def _train(root: Path, name: str, cfg: dict) -> Path:
    config = root / f"{name}.yaml"
    config.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    run = root / "runs" / name
    _run("-m", "trainers.train", "--config", config, "--run-dir", run)
    return run


def _data(tones: dict) -> dict:
    return {"train_manifest": str(tones["train"]), "valid_manifest": str(tones["valid"]),
            "test_manifest": str(tones["test"]), "max_seconds": 4.0, "batch_seconds": 8.0,
            "max_batch_utterances": 8, "bucket_utterances": 64, "num_workers": 0, "eval_batch_seconds": 40.0}


def pretrained_base(root: Path, seed: int) -> Path:
    """The tiny model (the demo's geometry) fully fine-tuned on tones of 100 ms a phone: a base that
    recognises them (its merged export)."""
    from trainers.tiny import build_tiny, tone_corpus

    tones = tone_corpus(root / "tones-base", n_train=96, n_valid=24, n_test=24, seed=seed)
    init = build_tiny(root / "init", hidden=96, layers=3, heads=4, conv="320x", seed=seed)
    run = _train(root, "base", {
        "name": "base", "seed": seed, "model": {"base": str(init), "start": "ctc", "freeze_feature_encoder": False},
        "lora": {"enabled": False}, "data": _data(tones),
        "train": {"log_every": 10, "eval_every": 100, "keep_last": 1, "heartbeat_seconds": 5.0},
        "phases": [{"name": "base", "epochs": 30, "lr": 5.0e-3, "warmup": 60}]})
    return run / "exports" / "merged"


def source_run(root: Path, base: Path, seed: int) -> Path:
    """LoRA adaptation of the base to faster speech (70 ms a phone, other sentences and noise), evaluated
    and checkpointed every 5 steps."""
    from trainers.tiny import tone_corpus

    tones = tone_corpus(root / "tones-fast", n_train=48, n_valid=24, n_test=96, seed=seed + 1, phone_seconds=0.07)
    return _train(root, "src", {
        "name": "src", "seed": seed, "model": {"base": str(base), "start": "ctc", "freeze_feature_encoder": True},
        "lora": {"r": 8, "alpha": 32, "dropout": 0.0,
                 "target_modules": ["q_proj", "k_proj", "v_proj", "out_proj", "intermediate_dense", "output_dense"]},
        "data": _data(tones), "train": {"log_every": 5, "eval_every": 5, "keep_last": 100, "heartbeat_seconds": 5.0},
        "phases": [{"name": "adapt", "epochs": 6, "lr": 3.0e-3, "warmup": 5}]})


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench average")
    ap.add_argument("--keep", metavar="DIR", help="write the runs here and keep them")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--base", metavar="DIR", help="a pretrained base (a merged export) instead of training one")
    args = ap.parse_args(argv)
    from kidconsole.report.summary import report_for

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        (root / "runs").mkdir(parents=True, exist_ok=True)
        base = Path(args.base) if args.base else pretrained_base(root, args.seed)
        src = source_run(root, base, args.seed)
        runs = root / "runs"
        made = [("average of 3 best, LoRA updates (deltas)", "avg-deltas", ["run", "average", src, "--best", "3"]),
                ("average of 3 best, LoRA factors A, B", "avg-factors",
                 ["run", "average", src, "--best", "3", "--lora", "factors"]),
                ("ensemble of the 3 best", "ens", ["run", "ensemble", src, "--best", "3"])]
        for _, name, cmd in made:
            _run("-m", "kidconsole", *cmd, "--name", name)
        gap = next((ln for ln in (runs / "avg-deltas" / "stdout.log").read_text().splitlines()
                    if "mean(B)" in ln), "")
        table = Table(title="LoRA adaptation of a tiny base to faster tone speech: the 3 best checkpoints combined vs "
                            "the best single one (96 test utterances, 6 speakers)")
        for col in ("model", "test PER", "Δ PER vs best single", "95% CI (speaker bootstrap)"):
            table.add_column(col, justify="left" if col == "model" else "right")
        best = report_for(src)
        table.add_row("best single checkpoint", f"{best.overall.rate() * 100:.2f}", "", "")
        for label, name, _ in made:
            rep = report_for(runs / name, src, n_boot=1000)
            d = next(x for x in rep.comparison.deltas if x.dimension == "all" and x.metric == "per")
            table.add_row(label, f"{d.rate * 100:.2f}", f"{d.delta * 100:+.2f}",
                          f"[{d.lo * 100:+.2f}, {d.hi * 100:+.2f}]")
        table.caption = gap
        Console(width=140).print(table)
