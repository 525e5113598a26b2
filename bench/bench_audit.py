"""Forced alignment and the label audit on the demo's synthetic corpus (CPU).

- The demo's models: its corpus (seed 0, clean), the base trained on the adults (configs/demo_base.yaml) and
  the LoRA run on the children (configs/demo_lora.yaml, r=8; the children's source train split, 50% / 100%
  curriculum).
- A second corpus of the same design (seed 1: other speakers, other utterances) with label errors planted in
  5% of its training split (another sentence, half the words, audio that lost its first 40%:
  ``synthesize(label_errors=0.05)``) and every phone's boundaries written by the generator.
- Alignment: ``kidconsole align`` of the second corpus's adult test split with the base and of its child
  test split with the LoRA model; each phone's aligned start against the generator's (word separators, which
  are pauses, aside): the share within 20 and 40 ms.
- Audit: ``kidconsole audit`` with the demo's LoRA model of the second corpus's children's train split:
  precision and recall of its suspects (its own outlier rule, and the N worst with N the planted count).
- Then the demo's LoRA run from the same base on that corrupted train split, with and without
  ``subset build --exclude`` of the suspects: test PER (the second corpus's children's test split, clean)
  and the difference with its speaker-bootstrap 95% interval (``kidconsole report RUN --vs OTHER``).

``python -m bench audit [--keep DIR]`` (``--keep``: the runs there are used again when run once more).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from bench.synth_runs import corpus, demo_models, lora, planted_ids, subset
from bench.tone_runs import delta_cells, per_vs, run_python, scored_per
from kidconsole.phonemes import WORD_SEP


def alignment_errors(times: Path, alignments: Path) -> np.ndarray:
    """Aligned start minus the generator's, in seconds, for every phone of the aligned utterances."""
    truth = {d["id"]: d["phones"] for d in map(json.loads, times.read_text(encoding="utf-8").splitlines())}
    out = []
    for line in alignments.read_text(encoding="utf-8").splitlines()[1:]:
        d = json.loads(line)
        if "error" in d or d["id"] not in truth:
            continue
        said = truth[d["id"]]
        if [p for p, _, _ in said] != [p["phone"] for p in d["phones"]]:
            continue  # a label that is not what was said (a planted error): no truth to compare with
        out += [a["start"] - start for (p, start, _), a in zip(said, d["phones"]) if p != WORD_SEP]
    return np.array(out)


def align(model: Path, manifest: Path, out: Path) -> Path:
    if not out.exists() or len(out.read_text(encoding="utf-8").splitlines()) < 2:
        run_python("-m", "kidconsole", "align", model, manifest, "-o", out, "--no-progress")
    return out


def audit(model: Path, manifest: Path, out: Path, *extra) -> dict:
    if not out.with_name(out.stem + ".report.json").exists():
        run_python("-m", "kidconsole", "audit", model, manifest, "-o", out, "--no-progress", *extra)
    return json.loads(out.with_name(out.stem + ".report.json").read_text(encoding="utf-8"))


def precision_recall(report: dict, planted: dict[str, str], pool: set[str]) -> tuple[float, float, dict]:
    flagged = {d["id"] for d in report["suspects"]}
    truth = {i for i in planted if i in pool}
    hit = flagged & truth
    by_kind = {}
    for kind in sorted(set(planted.values())):
        ids = {i for i in truth if planted[i] == kind}
        by_kind[kind] = (len(ids & flagged), len(ids))
    return len(hit) / max(1, len(flagged)), len(hit) / max(1, len(truth)), by_kind


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench audit")
    ap.add_argument("--keep", metavar="DIR", help="write the runs here and keep them (used again when run once more)")
    ap.add_argument("--no-retrain", action="store_true", help="stop after the audit (no LoRA runs on the corrupted set)")
    args = ap.parse_args(argv)
    console = Console(width=150)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        root.mkdir(parents=True, exist_ok=True)
        base, model = demo_models(root)
        m = corpus(root, seed=1)
        planted = planted_ids(m)

        t = Table(title="Forced alignment: aligned phone starts against the generator's (seed-1 corpus, test splits; "
                        "word separators aside)", title_justify="left")
        for col in ("model", "utterances", "phones", "within 20 ms", "within 40 ms", "median |error|", "median error"):
            t.add_column(col, justify="left" if col == "model" else "right")
        for name, mdl, split in (("base (adults)", base, "adult_test"),
                                 ("demo LoRA (children)", model, "child_test")):
            out = align(mdl, m[split], root / "align" / f"{split}.jsonl")
            err = alignment_errors(m["phone_times"], out)
            n = len(out.read_text(encoding="utf-8").splitlines()) - 1
            t.add_row(name, str(n), str(len(err)), f"{100 * np.mean(np.abs(err) <= 0.02):.1f}%",
                      f"{100 * np.mean(np.abs(err) <= 0.04):.1f}%", f"{1000 * np.median(np.abs(err)):.0f} ms",
                      f"{1000 * np.median(err):+.0f} ms")
        console.print(t)

        pool = {json.loads(line)["id"] for line in m["child_train"].read_text(encoding="utf-8").splitlines()}
        n_planted = sum(1 for i in planted if i in pool)
        reports = {"outliers (robust z > 3.5)": audit(model, m["child_train"], root / "audit" / "suspects.jsonl"),
                   f"the {n_planted} worst (--top)": audit(model, m["child_train"], root / "audit" / "top.jsonl",
                                                         "--top", str(n_planted))}
        t = Table(title=f"Label audit with the demo's LoRA model: {len(pool)} training utterances of the children, "
                        f"{n_planted} with a planted error ({100 * n_planted / len(pool):.1f}%)", title_justify="left")
        for col in ("suspects", "flagged", "precision", "recall", "by kind: found / planted"):
            t.add_column(col, justify="left" if col in ("suspects", "by kind: found / planted") else "right")
        for name, rep in reports.items():
            p, r, kinds = precision_recall(rep, planted, pool)
            t.add_row(name, str(len(rep["suspects"])), f"{p:.2f}", f"{r:.2f}",
                      ", ".join(f"{k} {a}/{b}" for k, (a, b) in kinds.items()))
        console.print(t)
        if args.no_retrain:
            return

        corrupted = lora(root, "lora-corrupted", base, subset(root, "corrupted", m["child_train"]), m)
        kept = subset(root, "excluded", m["child_train"], exclude=root / "audit" / "suspects.jsonl")
        excluded = lora(root, "lora-excluded", base, kept, m)
        excl = json.loads((kept["train"].parent / "report.json").read_text(encoding="utf-8"))["excluded"]
        d = per_vs(excluded, corrupted)
        t = Table(title="The demo's LoRA run on the corrupted training split, with and without --exclude of the "
                        "audit's suspects (test: the seed-1 children's test split, clean)", title_justify="left")
        for col in ("run", "train utterances", "test PER", "Δ PER vs without", "95% CI"):
            t.add_column(col, justify="left" if col == "run" else "right")
        n_train = sum(1 for _ in m["child_train"].open(encoding="utf-8"))
        t.add_row("without --exclude", str(n_train), f"{100 * scored_per(corrupted):.2f}", "", "")
        t.add_row(f"--exclude suspects ({excl['rows']} rows left out)", str(n_train - excl["rows"]),
                  f"{100 * d.rate:.2f}", *delta_cells(d))
        console.print(t)
