"""Checkpoint averaging and ensembles against the best single checkpoint, on the tiny model and tone corpus
(CPU): a base fully trained on tones, adapted with LoRA to faster ones (evaluated and checkpointed every 5
steps); then the average of its 3 best checkpoints (LoRA updates averaged exactly, and A / B averaged as
factors), and the ensemble of the same 3.
Each is compared with the run (its best checkpoint) on the test manifest: PER and the speaker-bootstrap 95%
interval of the difference (``kidconsole report RUN --vs SOURCE``). ``python -m bench average``
(``--keep DIR``: keep the runs there)."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.tone_runs import LORA, data_section, delta_cells, derive, per_vs, pretrained_base, scored_per, train


def source_run(root: Path, base: Path, seed: int) -> Path:
    """LoRA adaptation of the base to faster speech (70 ms a phone, other sentences and noise), evaluated
    and checkpointed every 5 steps."""
    from trainers.tiny import tone_corpus

    tones = tone_corpus(root / "tones-fast", n_train=48, n_valid=24, n_test=96, seed=seed + 1, phone_seconds=0.07)
    return train(root, "src", {
        "name": "src", "seed": seed, "model": {"base": str(base), "start": "ctc", "freeze_feature_encoder": True},
        "lora": LORA, "data": data_section(tones),
        "train": {"log_every": 5, "eval_every": 5, "keep_last": 100, "heartbeat_seconds": 5.0},
        "phases": [{"name": "adapt", "epochs": 6, "lr": 3.0e-3, "warmup": 5}]})


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench average")
    ap.add_argument("--keep", metavar="DIR", help="write the runs here and keep them")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--base", metavar="DIR", help="a pretrained base (a merged export) instead of training one")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        (root / "runs").mkdir(parents=True, exist_ok=True)
        base = Path(args.base) if args.base else pretrained_base(root, args.seed)
        src = source_run(root, base, args.seed)
        runs = root / "runs"
        made = [("average of 3 best, LoRA updates (deltas)", "avg-deltas", ["average", src, "--best", "3"]),
                ("average of 3 best, LoRA factors A, B", "avg-factors",
                 ["average", src, "--best", "3", "--lora", "factors"]),
                ("ensemble of the 3 best", "ens", ["ensemble", src, "--best", "3"])]
        for _, name, cmd in made:
            derive(runs, name, *cmd)
        gap = next((ln for ln in (runs / "avg-deltas" / "stdout.log").read_text().splitlines()
                    if "mean(B)" in ln), "")
        table = Table(title="LoRA adaptation of a tiny base to faster tone speech: the 3 best checkpoints combined vs "
                            "the best single one (96 test utterances, 6 speakers)")
        for col in ("model", "test PER", "Δ PER vs best single", "95% CI (speaker bootstrap)"):
            table.add_column(col, justify="left" if col == "model" else "right")
        table.add_row("best single checkpoint", f"{scored_per(src) * 100:.2f}", "", "")
        for label, name, _ in made:
            d = per_vs(runs / name, src)
            table.add_row(label, f"{d.rate * 100:.2f}", *delta_cells(d))
        table.caption = gap
        Console(width=140).print(table)
