"""Discriminative learning rates, pseudo-labelling, active selection, checkpoint averaging and ensembles against
plain LoRA, on the tiny model
and tone corpus (CPU). The base (trained on tones of 100 ms a phone, bench.tone_runs) is adapted with LoRA to
a pool of four speaking rates and noise levels, from its own condition to 45 ms a phone in loud noise; every
arm trains the same number of steps from the base with the same seed, and is compared with the plain run
(every pool label, one LR) on the same test manifest: PER and the speaker-bootstrap 95% interval of the
difference (``kidconsole report RUN --vs PLAIN``).

- discriminative LRs: ``train.lr_groups``, the adapters of the lowest layer at a third of the LR, the top
  layer's at twice it, the middle one's at it; the reverse; the lowest at three times, the middle at 1.5 and
  the top at the LR; and, to tell a split from more LR, one LR twice the plain one;
- pseudo-labels: the labels of half of each condition's speakers hidden; a run on the labelled half, its
  ``kidconsole pseudo`` of the hidden half's audio at two confidence thresholds, a run on the labelled half
  and each (``phases[].manifests``), also compared with the labelled half alone;
- active selection: ``kidconsole select`` with the base of the hardest 25% of the pool's hours (``--by
  confidence``, what an unlabelled pool allows, and ``--by loss``), against a stratified random 25%
  (``phases[].fraction``), each trained from the base, also compared with the random 25%; ``--by
  phone-confidence`` (the decoded phones' mean confidence) as well;
- averaging and ensembles: ``kidconsole run average`` of the plain run's 3 best and 4 last checkpoints,
  ``kidconsole run ensemble`` of its 3 best, and of the four runs on every label (plain and the lr_groups).

After the seeds, each arm's Δ over the test utterances of every seed together (ids and speakers kept apart
by seed): one interval from all the seeds' speakers.

``python -m bench techniques [--seeds 1 2 3]`` (``--keep DIR``: keep the runs there, and use the finished ones
again when run once more; ``--base DIR``: a trained base)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench import augment_runs
from bench.tone_runs import (LORA, data_section, delta_cells, derive, finished, per_vs, pretrained_base, run_python,
                             scored_per, train)
from trainers.select import sibling

# (seconds a phone, noise standard deviation): the base's own condition, then faster and noisier
CONDITIONS = ((0.10, 0.01), (0.07, 0.03), (0.055, 0.05), (0.045, 0.08))
LR = 3.0e-3
# the reference's shape (lower layers slower, upper faster) and its reverse, as multiples of the phase's LR
LR_GROUPS = {"lower ⅓, middle 1, upper 2 × LR": (1 / 3, 1.0, 2.0),
             "lower 2, middle 1, upper ⅓ × LR": (2.0, 1.0, 1 / 3),
             "lower 3, middle 1.5, upper 1 × LR": (3.0, 1.5, 1.0)}
KEEP = 12  # the plain run keeps every evaluated checkpoint, for averaging and ensembles
BY = ("confidence", "phone-confidence", "loss")
HIDDEN = ("spk3", "spk4", "spk5")  # the speakers (ages 8-10) whose labels are hidden, in every condition
MIN_CONFIDENCE = (0.8, 0.9)  # a looser and a stricter threshold: more pseudo-labels, or cleaner ones


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


def train_cells(run: Path) -> tuple[str, str]:
    """Utterances and minutes the run's (only) phase trained on, from its ``phase`` event (none: a scoring)."""
    for line in (run / "events.jsonl").read_text(encoding="utf-8").splitlines():
        e = json.loads(line)
        if e.get("kind") == "phase":
            return str(e["train_utterances"]), f"{e['train_hours'] * 60:.1f}"
    return "0", "0"


def adapt(root: Path, name: str, base: Path, pool: dict, seed: int, steps: int, phase: dict | None = None,
          lr_groups: list | None = None, keep: int = 1) -> Path:
    """A LoRA run from the base on the pool (or the train manifests ``phase`` names): ``steps`` steps (LR 3e-3,
    linear decay), its best validation checkpoint tested."""
    return train(root, name, {
        "name": name, "seed": seed,
        "model": {"base": str(base), "start": "ctc", "freeze_feature_encoder": True}, "lora": LORA,
        "data": data_section(pool),
        "train": {"log_every": 25, "eval_every": max(1, steps // 12), "keep_last": keep, "heartbeat_seconds": 5.0,
                  "lr_groups": lr_groups or []},
        "phases": [{"name": "adapt", "epochs": 1000, "max_steps": steps, "lr": LR, "warmup": 10, **(phase or {})}]})


@dataclasses.dataclass
class Arm:
    measurement: str
    label: str
    run: Path
    vs: Path          # what its Δ is against (the plain run, or the arm it is a variant of)
    key: str = ""     # its row in the table of all seeds (default: the label)
    trained: bool = True  # False: made from the plain run's weights or models (its training data is plain's)


def one_seed(root: Path, base: Path, seed: int, steps: int, per_condition) -> tuple[list[Arm], list[str]]:
    """Every arm's run for one seed (the pool drawn with it), and notes on the pseudo-labels and picks."""
    runs = root / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    pool = tone_pool(root / "pool", seed, *per_condition)
    if not finished(runs / "unadapted"):
        run_python("-m", "trainers.score", "--model", base, "--manifest", pool["test"], "--run-dir", runs / "unadapted")
    plain = adapt(root, "plain", base, pool, seed, steps, keep=KEEP)
    grouped = [adapt(root, f"lr-groups-{k}", base, pool, seed, steps, lr_groups=[
                   {"name": name, "params": f"layers {i}", "scale": scale}
                   for i, (name, scale) in enumerate(zip(("lower", "middle", "upper"), scales))])
               for k, scales in enumerate(LR_GROUPS.values())]
    arms = [Arm("", "base, not adapted", runs / "unadapted", plain),
            Arm("", "plain LoRA: all labels, one LR", plain, plain),
            *(Arm("(2) discriminative LRs", f"lr_groups: {label}", run, plain)
              for label, run in zip(LR_GROUPS, grouped)),
            Arm("(2) discriminative LRs", "one LR, 2 × plain's",
                adapt(root, "lr-2x", base, pool, seed, steps, phase={"lr": 2 * LR}), plain)]
    # the last split gives every layer at least the LR: is its gain the split's, or only more LR?
    arms.append(Arm("(2) discriminative LRs", f"  {list(LR_GROUPS)[-1]}: vs one LR, 2 ×", grouped[-1], arms[-1].run))
    notes = []

    labelled, hidden = split_labels(pool["train"], root)
    half = adapt(root, "labelled-half", base, pool, seed, steps, phase={"manifest": str(labelled)})
    arms.append(Arm("(3) pseudo-labels", "labelled half only", half, plain))
    n_hidden = sum(1 for _ in hidden.open(encoding="utf-8"))
    for c in MIN_CONFIDENCE:
        pseudo = root / f"pseudo-{c}.jsonl"
        run_python("-m", "kidconsole", "pseudo", half, hidden, "-o", pseudo, "--min-confidence", c, "--no-progress")
        kept, per = pseudo_quality(pseudo, pool["train"])
        notes.append(f"pseudo ≥ {c}: {kept} of the hidden half's {n_hidden} kept, PER {per * 100:.1f}% against the "
                     f"hidden labels")
        mixed = adapt(root, f"labelled-pseudo-{c}", base, pool, seed, steps,
                      phase={"manifests": [{"path": str(labelled)}, {"path": str(pseudo)}]})
        arms.append(Arm("(3) pseudo-labels", f"labelled half + {kept} pseudo (confidence ≥ {c})", mixed, plain,
                        key=f"labelled half + pseudo (confidence ≥ {c})"))
        arms.append(Arm("(3) pseudo-labels", f"  ≥ {c}: vs labelled half only", mixed, half))

    quarter = hours(pool["train"]) / 4
    rand = adapt(root, "random-25", base, pool, seed, steps, phase={"fraction": 0.25})
    arms.append(Arm("(4) selection", "random 25% of the hours", rand, plain))
    for by in BY:
        picked = root / f"hardest-{by}.jsonl"
        run_python("-m", "kidconsole", "select", base, "--manifest", pool["train"], "--hours", f"{quarter:.6f}",
                   "-o", picked, "--by", by, "--no-progress")
        report = json.loads(sibling(picked, ".report.json").read_text(encoding="utf-8"))
        notes.append(f"select --by {by}: picks' PER {report['picked']['mean_per'] * 100:.1f}% under the base "
                     f"(pool {report['pool']['mean_per'] * 100:.1f}%)")
        hardest = adapt(root, f"hardest-{by}", base, pool, seed, steps, phase={"manifest": str(picked)})
        arms.append(Arm("(4) selection", f"hardest 25% by {by} (kidconsole select)", hardest, plain))
        arms.append(Arm("(4) selection", f"  by {by}: vs random 25%", hardest, rand))
    corr = report["correlation"]
    notes.append(f"under the base, Spearman of confidence with PER {corr['spearman_confidence_per']:+.2f}, "
                 f"of phone confidence {corr['spearman_phone_confidence_per']:+.2f}, "
                 f"of loss {corr['spearman_loss_per']:+.2f} (pool)")

    derived = (("average of plain's 3 best checkpoints", "avg-best3", ("average", plain, "--best", "3")),
               ("average of plain's 4 last checkpoints", "avg-last4", ("average", plain, "--last", "4")),
               ("ensemble of plain's 3 best checkpoints", "ens-best3", ("ensemble", plain, "--best", "3")),
               ("ensemble of plain and the 3 lr_groups runs", "ens-runs", ("ensemble", plain, *grouped)))
    arms += [Arm("(5) averaging, ensembles", label, derive(runs, name, *command), plain, trained=False)
             for label, name, command in derived]
    return arms, notes


AGE_GROUPS = ("<5", "5-6", "7-8", "9-10")


def augment_section(root: Path, seeds: list[int], steps: int, jobs: int, console: Console,
                    arms: list[str] | None = None) -> None:
    """(6) Waveform augmentation against the reference recipe in the demo's setting (bench.augment_runs):
    each arm's Δ PER on the children's test split by seed and pooled, then pooled by age group."""
    from kidconsole.report.summary import report_for

    t0 = time.time()
    out = augment_runs.run_section(root, seeds, steps, jobs, console, arms)
    ref = out["reference"]["runs"]
    title = (f"(6) waveform augmentation vs the reference recipe: LoRA on the demo's synthetic children, {steps} "
             f"steps an arm, {len(seeds)} seeds (each its own corpus and base)")
    by_seed, by_age = Table(title=title), Table(title="(6) the same, pooled over the seeds, by age group")
    by_seed.add_column("arm")
    by_age.add_column("arm")
    for seed in seeds:
        by_seed.add_column(f"seed {seed}", justify="right")
    by_seed.add_column("all seeds pooled", justify="right")
    by_seed.add_column("valid Δ", justify="right")
    for group in AGE_GROUPS:
        by_age.add_column(f"age {group}", justify="right")
    by_seed.add_row("reference recipe: test PER", *(f"{scored_per(ref[s]) * 100:.2f}" for s in seeds),
                    f"{sum(scored_per(ref[s]) for s in seeds) / len(seeds) * 100:.2f} (mean)", "")
    for name, arm in out.items():
        if name.startswith("_") or name == "reference":
            continue
        pairs = [(s, Arm("", arm["label"], arm["runs"][s], ref[s])) for s in seeds]
        cells = [" ".join(delta_cells(per_vs(arm["runs"][s], ref[s]))) for s in seeds]
        rep = report_for(*pooled_predictions(root, f"augment-{name}-{steps}", pairs), n_boot=1000)
        deltas = {(d.dimension, d.label): d for d in rep.comparison.deltas if d.metric == "per"}
        valid = sum(augment_runs.best_valid_per(arm["runs"][s]) - augment_runs.best_valid_per(ref[s])
                    for s in seeds) / len(seeds)
        by_seed.add_row(arm["label"], *cells, " ".join(delta_cells(deltas[("all", "all")])), f"{valid * 100:+.2f}")
        by_age.add_row(arm["label"], *(_age_cell(deltas.get(("age_group", g))) for g in AGE_GROUPS))
    by_seed.caption = (f"Δ PER (points, negative is better) and its 95% speaker-bootstrap interval against the "
                       f"reference arm of the same seed; pooled: the test utterances of every seed together. valid Δ: "
                       f"the mean over seeds of the best validation PER's difference, on which the chain's members "
                       f"were chosen. {time.time() - t0:.0f} s, {jobs} runs at a time, load average "
                       f"{os.getloadavg()[0]:.1f}.")
    by_age.caption = "Δ PER [95% CI] against the reference, pooled; one speaker in a group: no interval"
    console.print(by_seed)
    console.print(by_age)


def _age_cell(d) -> str:
    if d is None:
        return "-"
    return " ".join(delta_cells(d)) if math.isfinite(d.lo) else f"{d.delta * 100:+.2f} (1 speaker)"


def pooled_delta(root: Path, slug: str, pairs: list[tuple[int, Arm]]):
    """An arm's Δ over the test utterances of every seed together: each seed's predictions (its pool has its
    own speakers) with ids and speakers prefixed by the seed, so the bootstrap resamples all their speakers."""
    return per_vs(*pooled_predictions(root, slug, pairs))


def pooled_predictions(root: Path, slug: str, pairs: list[tuple[int, Arm]]) -> list[Path]:
    """The arm's and its baseline's predictions of every seed in one file each (ids and speakers prefixed by
    the seed)."""
    sides = []
    for side in ("run", "vs"):
        path = root / "pooled" / f"{slug}-{side}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as out:
            for seed, arm in pairs:
                for line in (getattr(arm, side) / "predictions.jsonl").read_text(encoding="utf-8").splitlines():
                    row = json.loads(line)
                    row.update(id=f"s{seed}-{row['id']}", speaker=f"s{seed}-{row['speaker']}")
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
        sides.append(path)
    return sides


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench techniques")
    ap.add_argument("--keep", metavar="DIR",
                    help="write the runs here and keep them (finished runs of the same config there are used again)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1], metavar="N",
                    help="seeds (pool, data order, dropout), a table each and one of all (default 1)")
    ap.add_argument("--base", metavar="DIR", help="a pretrained base (a merged export) instead of training one")
    ap.add_argument("--steps", type=int, default=300, help="training steps of every arm (default 300)")
    ap.add_argument("--per-condition", type=int, nargs=3, default=(96, 24, 96), metavar=("TRAIN", "VALID", "TEST"),
                    help="utterances per condition and split (default 96 24 96)")
    ap.add_argument("--section", choices=("all", "tones", "augment"), default="all",
                    help="tones: sections 2-5 on the tone pool; augment: section 6, waveform augmentation in the "
                    "demo's setting (default all)")
    ap.add_argument("--augment-steps", type=int, default=augment_runs.STEPS,
                    help=f"training steps of every augmentation arm (default {augment_runs.STEPS})")
    ap.add_argument("--augment-arms", nargs="+", choices=augment_runs.arm_names(), metavar="ARM",
                    help="only these augmentation arms, beside the reference (the chain runs only with all); "
                    f"of: {', '.join(augment_runs.arm_names())}")
    ap.add_argument("--jobs", type=int, default=3, help="augmentation runs at a time (default 3)")
    args = ap.parse_args(argv)
    console = Console(width=150)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        (root / "runs").mkdir(parents=True, exist_ok=True)
        if args.section in ("all", "augment"):
            augment_section(root / "augment", args.seeds, args.augment_steps, args.jobs, console,
                            args.augment_arms)
        if args.section == "augment":
            return
        base = Path(args.base) if args.base else pretrained_base(root, args.seeds[0])
        summary: dict[str, dict[int, str]] = {}
        by_arm: dict[str, list[tuple[int, Arm]]] = {}
        for seed in args.seeds:
            arms, notes = one_seed(root / f"seed-{seed}", base, seed, args.steps, args.per_condition)
            table = Table(title=f"seed {seed}: LoRA adaptation of a tiny tone base to 4 rates and noise levels, "
                                f"{args.steps} steps an arm (test: {len(CONDITIONS) * args.per_condition[2]} "
                                f"utterances, {len(CONDITIONS) * 6} speakers)")
            for col in ("measurement", "arm", "train utts", "train min", "test PER", "Δ PER", "95% CI"):
                table.add_column(col, justify="left" if col in ("measurement", "arm") else "right")
            for arm in arms:
                if arm.run == arm.vs:
                    table.add_row(arm.measurement, arm.label, *train_cells(arm.run),
                                  f"{scored_per(arm.run) * 100:.2f}", "", "")
                    continue
                d = per_vs(arm.run, arm.vs)
                cells = delta_cells(d)
                trained = train_cells(arm.run) if arm.label[0] != " " and arm.trained else ("", "")
                table.add_row(arm.measurement, arm.label, *trained, f"{d.rate * 100:.2f}", *cells)
                summary.setdefault(arm.key or arm.label, {})[seed] = f"{cells[0]} {cells[1]}"
                by_arm.setdefault(arm.key or arm.label, []).append((seed, arm))
            table.caption = "Δ: against plain LoRA, or the arm above where indented\n" + "\n".join(notes)
            console.print(table)
        if len(args.seeds) > 1:
            table = Table(title="Δ PER [95% CI] of each arm, by seed")
            table.add_column("arm")
            for seed in args.seeds:
                table.add_column(f"seed {seed}", justify="right")
            table.add_column("all seeds pooled", justify="right")
            for k, (label, cells) in enumerate(summary.items()):
                pooled = " ".join(delta_cells(pooled_delta(root, f"arm{k}", by_arm[label])))
                table.add_row(label, *(cells.get(seed, "") for seed in args.seeds), pooled)
            console.print(table)
