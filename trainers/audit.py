"""The label audit: which utterances' labels do not fit their audio, ranked, with reasons.

``python -m trainers.audit MODEL MANIFEST [-o suspects.jsonl] [--top N]`` (``kidconsole audit`` starts it).

1. Every utterance is force-aligned to its label (trainers.align), streamed and resumable, into
   ``suspects.alignments.jsonl``.
2. Each gets its **misfit**: the best unconstrained path's log probability minus the label's forced
   path's, summed over the frames, per labelled phone. A label the audio bears out costs little against
   what the model hears anyway, whatever the noise or the speaker; another sentence, a transcript missing
   half its words, or audio missing its first words costs much more. The ``score`` alone (the forced path
   per frame) would also flag every hard but correct utterance (a noisy one, a young child); the gap per
   frame spreads a truncated transcript's cost over all the frames of the words it lacks and missed every
   truncation in the benchmark (docs/benchmarks/audit.md), per labelled phone it does not.
3. Suspects: with ``--top N`` the N worst; otherwise the outliers, a misfit over the median by more than
   ``--threshold`` (default 3.5) robust standard deviations (1.4826 x the median absolute deviation; the
   modified z-score's usual cut), so the audit needs no guess of how many labels are wrong.
4. ``suspects.jsonl``: the suspects' manifest rows as written (``subset build --exclude suspects.jsonl``
   leaves them out), ``suspects.report.json`` and ``.md``: the suspects with their reasons (the PER of the
   greedy decode against the label, the decoded / labelled length ratio), the threshold, and how the
   suspects spread over age groups and SNR buckets.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from kidconsole.errors import KidconsoleError
from kidconsole.rundir import atomic_write_text, atomic_writer
from trainers.select import sibling

DEFAULT_THRESHOLD = 3.5
MAD_SCALE = 1.4826  # the median absolute deviation of a normal distribution is 1 / 1.4826 of its sd
TOP_SHOWN = 50      # suspects listed in the report's markdown


def reason(d: dict) -> str:
    """Why a label looks wrong, in words, from the alignment's figures."""
    r, per = d["length_ratio"], d["per"]
    if r >= 1.5:
        return f"the audio holds more than the label: the decode is {r:.1f}x as long (a truncated transcript?)"
    if r <= 0.67:
        return f"the label holds more than the audio: the decode is {r:.2f}x as long (audio cut, or a wrong label?)"
    if per >= 0.7:
        return f"the decode and the label disagree (PER {100 * per:.0f}%): another sentence?"
    return f"each labelled phone costs {d['misfit']:.2f} against the free decode (PER {100 * per:.0f}%)"


def misfit_z(misfits: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Each misfit's robust z-score, with the median and robust sd it is measured against."""
    med = float(np.median(misfits)) if len(misfits) else 0.0
    sd = MAD_SCALE * float(np.median(np.abs(misfits - med))) if len(misfits) else 0.0
    sd = sd or float(np.std(misfits)) or 1.0
    return (misfits - med) / sd, med, sd


def rank(records: list[dict], *, top: int | None = None,
         threshold: float = DEFAULT_THRESHOLD) -> tuple[list[dict], dict]:
    """The aligned utterances worst first, each with its ``z`` and ``reason``; the suspects are the first
    ``top``, or those with z over ``threshold``. Returns (suspects, the rule as applied)."""
    aligned = [dict(d) for d in records if "error" not in d]
    z, med, sd = misfit_z(np.array([d["misfit"] for d in aligned], dtype=float))
    for d, zi in zip(aligned, z.tolist()):
        d["z"] = round(zi, 3)
        d["reason"] = reason(d)
    aligned.sort(key=lambda d: (-d["misfit"], d["id"]))
    suspects = aligned[:top] if top is not None else [d for d in aligned if d["z"] > threshold]
    rule = {"top": top} if top is not None else {"threshold_z": threshold}
    return suspects, {**rule, "median_misfit": round(med, 5), "robust_sd_misfit": round(sd, 5),
                      "cut_misfit": round(med + threshold * sd, 5) if top is None else None}


def spread(records: list[dict], suspects: list[dict]) -> dict[str, list[dict]]:
    """Per age group and per SNR bucket (the reports' buckets): utterances, suspects, their share."""
    from kidconsole.report.buckets import DEFAULT_EDGES, bin_values, edge_labels
    from kidconsole.subset.strata import UNKNOWN

    aligned = [d for d in records if "error" not in d]
    flagged = {d["id"] for d in suspects}
    out = {}
    for dim, key in (("age_group", "age"), ("snr", "snr")):
        edges = DEFAULT_EDGES[dim]
        labels = edge_labels(dim, edges) + [UNKNOWN]
        codes = bin_values(np.array([np.nan if d.get(key) is None else d[key] for d in aligned], dtype=float), edges)
        rows = []
        for k, label in enumerate(labels):
            members = [aligned[i] for i in np.flatnonzero(codes == k)]
            if members:
                n = sum(d["id"] in flagged for d in members)
                rows.append({"bucket": label, "utterances": len(members), "suspects": n,
                             "share": round(n / len(members), 4)})
        out[dim] = rows
    return out


def markdown(report: dict) -> str:
    lines = [f"# Label audit of {report['manifest']}", "",
             f"Model: `{report['model']}`. {report['aligned']} utterances aligned, {report['skipped']} skipped; "
             f"{len(report['suspects'])} suspects"
             + (f" (the {report['rule']['top']} worst)" if report["rule"].get("top") is not None else
                f" (misfit over {report['rule']['threshold_z']:g} robust sd above the median: misfit > "
                f"{report['rule']['cut_misfit']:.3f})") + ".", ""]
    for dim, title in (("age_group", "age group"), ("snr", "SNR")):
        lines += [f"## Suspects by {title}", "", "| bucket | utterances | suspects | share |", "|---|---:|---:|---:|"]
        lines += [f"| {r['bucket']} | {r['utterances']} | {r['suspects']} | {100 * r['share']:.1f}% |"
                  for r in report["spread"][dim]]
        lines.append("")
    lines += ["## Worst suspects", "", "| id | misfit | z | PER | length ratio | reason |",
              "|---|---:|---:|---:|---:|---|"]
    for d in report["suspects"][:TOP_SHOWN]:
        lines.append(f"| `{d['id']}` | {d['misfit']:.3f} | {d['z']:.1f} | {100 * d['per']:.0f}% | "
                     f"{d['length_ratio']:.2f} | {d['reason']} |")
    return "\n".join(lines) + "\n"


def write_suspects(manifest: Path, ids: set[str], out: Path) -> int:
    """The suspects' rows copied from the manifest as they are."""
    n = 0
    left = set(ids)
    with atomic_writer(out, "wb") as fh, manifest.open("rb") as src:
        for raw in src:
            try:
                uid = json.loads(raw).get("id") if raw.strip() else None
            except ValueError:
                continue
            if uid in left:
                fh.write(raw if raw.endswith(b"\n") else raw + b"\n")
                left.discard(uid)
                n += 1
    return n


def parser() -> argparse.ArgumentParser:
    from kidconsole.job_arguments import add_audit_arguments

    ap = argparse.ArgumentParser(prog="python -m trainers.audit", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_audit_arguments(ap)
    return ap


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.table import Table

    from kidconsole.job_arguments import show_progress
    from trainers.align import align_manifest
    from trainers.quiet import quiet_libraries
    from trainers.recogniser import load_recogniser

    args = parser().parse_args(argv)
    quiet_libraries()
    err = Console(stderr=True, soft_wrap=True, highlight=False)
    manifest = Path(args.manifest).resolve()
    if not manifest.is_file():
        raise KidconsoleError(f"{manifest}: no such manifest")
    if args.top is not None and args.top < 1:
        raise KidconsoleError(f"--top {args.top}: expected at least 1")
    output = Path(args.output).resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    rec = load_recogniser(args.model, device=args.device)
    records = align_manifest(rec, manifest, sibling(output, ".alignments.jsonl"), batch_seconds=args.batch_seconds,
                             threads=args.threads, progress=show_progress(args), console=err)
    suspects, rule = rank(records, top=args.top, threshold=args.threshold)
    n = write_suspects(manifest, {d["id"] for d in suspects}, output)
    skipped = [d for d in records if "error" in d]
    report = {"manifest": str(manifest), "model": str(rec.path), "output": str(output),
              "aligned": len(records) - len(skipped), "skipped": len(skipped), "rule": rule,
              "spread": spread(records, suspects), "suspects": suspects,
              "skipped_examples": [{"id": d["id"], "error": d["error"]} for d in skipped[:20]]}
    atomic_write_text(sibling(output, ".report.json"), json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    atomic_write_text(sibling(output, ".report.md"), markdown(report))
    t = Table(title=f"{len(suspects)} suspect labels of {report['aligned']} (worst first)", title_justify="left")
    for col in ("id", "misfit", "z", "PER", "len ratio", "reason"):
        t.add_column(col, justify="left" if col in ("id", "reason") else "right", overflow="fold")
    for d in suspects[:args.show]:
        t.add_row(d["id"], f"{d['misfit']:.3f}", f"{d['z']:.1f}", f"{100 * d['per']:.0f}%", f"{d['length_ratio']:.2f}",
                  d["reason"])
    err.print(t)
    for dim in ("age_group", "snr"):
        err.print(f"suspects by {dim.replace('_', ' ')}: " + ", ".join(
            f"{r['bucket']} {r['suspects']}/{r['utterances']}" for r in report["spread"][dim]), markup=False)
    err.print(f"{n} suspects to {output} (`kidconsole subset build ... --exclude {output}`); report "
              f"{sibling(output, '.report.md')}" + (f"; {len(skipped)} utterances could not be aligned" if skipped
                                                    else ""), markup=False)
    return 0


if __name__ == "__main__":
    from trainers.confidence import run_command

    run_command(main, "audit")
