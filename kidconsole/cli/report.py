"""``kidconsole report RUN [--vs REFERENCE]``: error rates per age, SNR, duration,
gender, speaker and phoneme, from a run's test predictions; with a reference
(a baseline or another run), deltas RUN minus REFERENCE (negative is better)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kidconsole.cli import add_output_flags
from kidconsole.errors import KidconsoleError
from kidconsole.shown import visible

FORMATS = ("md", "csv", "json")


HELP = "error report of a run's test predictions (per age, SNR, duration, phoneme)"
DESCRIPTION = ("Error report of a run directory's predictions.jsonl (or any predictions JSONL): PER/CER/WER overall "
               "and per bucket, phone confusions, worst utterances; with --vs, per-bucket deltas with "
               "speaker-bootstrap confidence intervals (RUN minus REFERENCE: negative is better).")


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="run directory or predictions JSONL")
    p.add_argument("--vs", metavar="REFERENCE",
                   help="what RUN is compared against: a baseline or another run (deltas are RUN minus REFERENCE)")
    add_output_flags(p, FORMATS, otherwise="terminal tables")
    p.add_argument("--age-groups", metavar="EDGES", help="age group edges in years (default 5,7,9,11,18)")
    p.add_argument("--snr-edges", metavar="EDGES", help="SNR bucket edges in dB (default 10,20,30)")
    p.add_argument("--duration-edges", metavar="EDGES", help="duration bucket edges in seconds (default 2,4,8)")
    p.add_argument("--worst", type=int, default=5, metavar="N", help="worst utterances per bucket (default 5)")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N", help="speaker resamples (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--strict", action="store_true", help="stop at the first malformed prediction line")
    p.set_defaults(func=run)


def _format(args) -> str | None:
    if args.format:
        return args.format
    if args.output:
        suffix = Path(args.output).suffix.lower().lstrip(".")
        fmt = {"markdown": "md", "jsonl": "json"}.get(suffix, suffix)
        if fmt not in FORMATS:
            raise KidconsoleError(f"-o {args.output}: cannot tell the format from the suffix; give --format")
        return fmt
    return None


def run(args: argparse.Namespace) -> int:
    from kidconsole.report.buckets import parse_edges
    from kidconsole.report.predictions import read_predictions
    from kidconsole.report.render import print_report, render
    from kidconsole.report.summary import report_for

    edges = {}
    for key, opt in (("age_group", "age_groups"), ("snr", "snr_edges"), ("duration", "duration_edges")):
        if getattr(args, opt):
            edges[key] = parse_edges(getattr(args, opt), "--" + opt.replace("_", "-"))
    fmt = _format(args)
    if args.strict:  # fail on the first malformed line before any work
        read_predictions(args.run, strict=True)
        if args.vs:
            read_predictions(args.vs, strict=True)
    rep = report_for(args.run, args.vs, edges, n_boot=args.bootstrap, seed=args.seed, worst_k=args.worst)
    if rep.n == 0:
        raise KidconsoleError(f"{rep.path}: no usable prediction lines"
                              + (f" ({len(rep.skipped)} malformed, first: {rep.skipped[0]})" if rep.skipped else ""))
    if fmt is None and not args.output:
        print_report(rep)
    else:
        text = render(rep, fmt)
        if args.output:
            Path(args.output).write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(visible(text, lines=True))  # ids and phones from disk must not drive the terminal
    if rep.skipped:
        print(visible(f"kidconsole: {len(rep.skipped)} malformed prediction lines skipped; first: {rep.skipped[0]}"),
              file=sys.stderr)
    return 0
