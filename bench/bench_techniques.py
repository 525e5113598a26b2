"""Discriminative learning rates, pseudo-labelling and active selection against plain LoRA, on the tiny model
and tone corpus (CPU). The base (trained on tones of 100 ms a phone, bench.tone_runs) is adapted with LoRA to
a pool of four speaking rates and noise levels, from its own condition to 45 ms a phone in loud noise; every
arm trains the same number of steps from the base with the same seed, and is compared with the plain run
(every pool label, one LR) on the same test manifest: PER and the speaker-bootstrap 95% interval of the
difference (``kidconsole report RUN --vs PLAIN``).

- discriminative LRs: ``train.lr_groups``, the adapters of the lowest layer at a third of the LR, the top
  layer's at twice it, the middle one's at it;
- pseudo-labels: the labels of half of each condition's speakers hidden; a run on the labelled half, its
  ``kidconsole pseudo`` of the hidden half's audio, a run on both (``phases[].manifests``);
- active selection: ``kidconsole select`` with the base of the hardest 25% of the pool's hours, against a
  stratified random 25% (``phases[].fraction``), each trained from the base.

``python -m bench techniques`` (``--keep DIR``: keep the runs there; ``--base DIR``: a trained base)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.tone_runs import LORA, data_section, delta_cells, per_vs, pretrained_base, run_python, scored_per, train

# (seconds a phone, noise standard deviation): the base's own condition, then faster and noisier
CONDITIONS = ((0.10, 0.01), (0.07, 0.03), (0.055, 0.05), (0.045, 0.08))
LR = 3.0e-3
LR_GROUPS = [{"name": "lower", "params": "layers 0", "scale": 1 / 3},
             {"name": "middle", "params": "layers 1", "scale": 1.0},
             {"name": "upper", "params": "layers 2", "scale": 2.0}]
HIDDEN = ("spk3", "spk4", "spk5")  # the speakers (ages 8-10) whose labels are hidden, in every condition
MIN_CONFIDENCE = 0.8


def tone_pool(root: Path, seed: int, n_train: int, n_valid: int, n_test: int) -> dict[str, Path]:
    """Tone corpora of each of CONDITIONS merged: ids and speakers prefixed by the condition (``c2-spk4``: a
    speaker has one rate and room), SNR the tones' (power 0.125) against the noise."""
    from kidconsole.manifest import read_manifest, write_manifest
    from trainers.tiny import tone_corpus

    rows: dict[str, list] = {"train": [], "valid": [], "test": []}
    for c, (phone_seconds, noise) in enumerate(CONDITIONS):
        parts = tone_corpus(root / f"c{c}", n_train=n_train, n_valid=n_valid, n_test=n_test,
                            seed=seed * 100 + c, phone_seconds=phone_seconds, noise=noise)
        snr = round(10 * math.log10(0.125 / noise ** 2), 1)
        for split, out in rows.items():
            out += [dataclasses.replace(r, id=f"c{c}-{r.id}", speaker=f"c{c}-{r.speaker}", snr=snr)
                    for r in read_manifest(parts[split])]
    paths = {split: root / f"{split}.jsonl" for split in rows}
    for split, out in rows.items():
        write_manifest(paths[split], out)
    return paths


def split_labels(pool: Path, root: Path) -> tuple[Path, Path]:
    """The pool's rows of speakers not in HIDDEN (labelled), and those of HIDDEN with their phones removed."""
    from kidconsole.manifest import read_manifest, write_manifest

    rows = list(read_manifest(pool))
    labelled, hidden = root / "labelled.jsonl", root / "hidden-audio.jsonl"
    write_manifest(labelled, [r for r in rows if r.speaker.split("-")[-1] not in HIDDEN])
    write_manifest(hidden, [dataclasses.replace(r, phones="") for r in rows if r.speaker.split("-")[-1] in HIDDEN])
    return labelled, hidden


def pseudo_quality(pseudo: Path, pool: Path) -> tuple[int, float]:
    """Rows kept by ``kidconsole pseudo`` and their PER against the labels that were hidden."""
    from kidconsole.manifest import read_manifest
    from kidconsole.metrics import error_rates

    truth = {r.id: r.phones for r in read_manifest(pool)}
    kept = list(read_manifest(pseudo))
    if not kept:
        return 0, float("nan")
    return len(kept), error_rates([truth[r.id] for r in kept], [r.phones for r in kept])["per"]


def hours(manifest: Path) -> float:
    from kidconsole.manifest import read_manifest

    return sum(r.duration for r in read_manifest(manifest)) / 3600


def phase_rows(run: Path) -> tuple[int, float]:
    """Utterances and hours the run's (only) phase trained on, from its ``phase`` event."""
    for line in (run / "events.jsonl").read_text(encoding="utf-8").splitlines():
        e = json.loads(line)
        if e.get("kind") == "phase":
            return e["train_utterances"], e["train_hours"]
    raise SystemExit(f"{run}: no phase event")


def adapt(root: Path, name: str, base: Path, pool: dict, seed: int, steps: int, phase: dict | None = None,
          lr_groups: list | None = None) -> Path:
    """A LoRA run from the base on the pool (or the train manifests ``phase`` names): ``steps`` steps (LR 3e-3,
    linear decay), its best validation checkpoint tested."""
    return train(root, name, {
        "name": name, "seed": seed,
        "model": {"base": str(base), "start": "ctc", "freeze_feature_encoder": True}, "lora": LORA,
        "data": data_section(pool),
        "train": {"log_every": 25, "eval_every": max(1, steps // 12), "keep_last": 1, "heartbeat_seconds": 5.0,
                  "lr_groups": lr_groups or []},
        "phases": [{"name": "adapt", "epochs": 1000, "max_steps": steps, "lr": LR, "warmup": 10, **(phase or {})}]})


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench techniques")
    ap.add_argument("--keep", metavar="DIR", help="write the runs here and keep them")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--base", metavar="DIR", help="a pretrained base (a merged export) instead of training one")
    ap.add_argument("--steps", type=int, default=300, help="training steps of every arm (default 300)")
    ap.add_argument("--per-condition", type=int, nargs=3, default=(96, 12, 48), metavar=("TRAIN", "VALID", "TEST"),
                    help="utterances per condition and split (default 96 12 48)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        runs = root / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        base = Path(args.base) if args.base else pretrained_base(root, args.seed)
        pool = tone_pool(root / "pool", args.seed, *args.per_condition)
        seed, steps = args.seed, args.steps

        run_python("-m", "trainers.score", "--model", base, "--manifest", pool["test"], "--run-dir", runs / "unadapted")
        plain = adapt(root, "plain", base, pool, seed, steps)
        groups = adapt(root, "lr-groups", base, pool, seed, steps, lr_groups=LR_GROUPS)

        labelled, hidden = split_labels(pool["train"], root)
        half = adapt(root, "labelled-half", base, pool, seed, steps,
                     phase={"manifest": str(labelled)})
        pseudo = root / "pseudo.jsonl"
        run_python("-m", "kidconsole", "pseudo", half, hidden, "-o", pseudo, "--min-confidence", MIN_CONFIDENCE,
                   "--no-progress")
        kept, pseudo_per = pseudo_quality(pseudo, pool["train"])
        mixed = adapt(root, "labelled-pseudo", base, pool, seed, steps,
                      phase={"manifests": [{"path": str(labelled)}, {"path": str(pseudo)}]})

        quarter = hours(pool["train"]) / 4
        picked = root / "hardest.jsonl"
        run_python("-m", "kidconsole", "select", base, "--manifest", pool["train"], "--hours", f"{quarter:.6f}",
                   "-o", picked, "--no-progress")
        hardest = adapt(root, "hardest-25", base, pool, seed, steps,
                        phase={"manifest": str(picked)})
        rand = adapt(root, "random-25", base, pool, seed, steps, phase={"fraction": 0.25})

        n_hidden = sum(1 for _ in hidden.open(encoding="utf-8"))
        table = Table(title=f"LoRA adaptation of a tiny tone base to 4 rates and noise levels, {steps} steps an arm: "
                            f"each against plain LoRA (all labels, one LR), on the same test set")
        for col in ("measurement", "arm", "train utts", "train min", "test PER", "Δ PER vs plain", "95% CI"):
            table.add_column(col, justify="left" if col in ("measurement", "arm") else "right")
        unadapted = per_vs(runs / "unadapted", plain)
        table.add_row("", "base, not adapted", "0", "0", f"{unadapted.rate * 100:.2f}", *delta_cells(unadapted))
        utts, hrs = phase_rows(plain)
        table.add_row("", "plain LoRA: all labels, one LR", str(utts), f"{hrs * 60:.1f}", f"{scored_per(plain) * 100:.2f}",
                      "", "")
        arms = [("(2) discriminative LRs", "lr_groups: lower ⅓, middle 1, upper 2 × LR", groups),
                ("(3) pseudo-labels", "labelled half only", half),
                ("(3) pseudo-labels", f"labelled half + {kept} pseudo-labelled", mixed),
                ("(4) selection", "random 25% of the hours", rand),
                ("(4) selection", "hardest 25% (kidconsole select)", hardest)]
        for measure, label, run in arms:
            d = per_vs(run, plain)
            utts, hrs = phase_rows(run)
            table.add_row(measure, label, str(utts), f"{hrs * 60:.1f}", f"{d.rate * 100:.2f}", *delta_cells(d))
        table.caption = (f"pseudo: {kept} of the hidden half's {n_hidden} utterances kept at confidence ≥ "
                         f"{MIN_CONFIDENCE}, their PER against the hidden labels {pseudo_per * 100:.2f}%")
        heads = Table(title="head to head")
        for col in ("arm", "against", "Δ PER", "95% CI"):
            heads.add_column(col, justify="left" if col in ("arm", "against") else "right")
        for label, run, other_label, other in [
                ("labelled half + pseudo", mixed, "labelled half only", half),
                ("hardest 25%", hardest, "random 25%", rand)]:
            heads.add_row(label, other_label, *delta_cells(per_vs(run, other)))
        console = Console(width=150)
        console.print(table)
        console.print(heads)
