"""``kidconsole subset``: build speaker-disjoint, stratified subsets; show a built one.

``kidconsole subset build MANIFEST --hours 100 --split 0.915/0.052/0.033 -o OUTDIR``
``kidconsole subset show OUTDIR``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kidconsole.cli import add_progress_flag, show_progress
from kidconsole.errors import KidconsoleError
from kidconsole.palette import WARNING
from kidconsole.subset.options import CLI_NAMES, parse_max_val_samples, parse_numbers


HELP = "build speaker-disjoint, stratified train/validation/test subsets"
DESCRIPTION = ("Build speaker-disjoint train/validation/test subsets of a manifest that hit the requested hours and "
               "keep the corpus's shares by age, SNR and duration; nested curriculum fractions of train and a fixed "
               "validation sample. See docs/subsets.md.")


def register(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="subset_command", metavar="ACTION", required=True)

    b = sub.add_parser("build", help="build a subset into OUTDIR",
                       description="Build a subset: train/validation/test, validation_sample, curriculum phases, "
                       "report.md/report.json and subset.yaml in OUTDIR.")
    b.add_argument("manifest", type=Path, metavar="MANIFEST", help="corpus manifest (JSONL)")
    b.add_argument("-o", "--out", type=Path, required=True, metavar="OUTDIR", help="output folder")
    size = b.add_mutually_exclusive_group()
    size.add_argument("--hours", type=float, metavar="H",
                      help="total hours, split by --split (default: as much as the pools give at --split)")
    size.add_argument("--split-hours", metavar="T/V/E",
                      help="hours per split instead, e.g. 91.5/5.2/3.3")
    b.add_argument("--split", default="0.915/0.052/0.033", metavar="T/V/E",
                   help="train/validation/test shares of the hours (default 0.915/0.052/0.033)")
    b.add_argument("--fractions", default="0.2/0.6/1", metavar="F1/F2/...",
                   help="nested curriculum fractions of train, ending with 1 (default 0.2/0.6/1)")
    b.add_argument("--max-val-samples", default="20000", metavar="N",
                   help="utterances in validation_sample.jsonl ('none': all of validation; default 20000)")
    b.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    b.add_argument("--age-edges", metavar="E1,E2,...", help="age bucket edges in years (default 5,7,9,11,18)")
    b.add_argument("--snr-edges", metavar="E1,E2,...", help="SNR bucket edges in dB (default 10,20,30)")
    b.add_argument("--duration-edges", metavar="E1,E2,...", help="duration bucket edges in s (default 2,4,8)")
    b.add_argument("--exclude", type=Path, metavar="FILE",
                   help="leave out the rows whose ids FILE lists (the suspects of `kidconsole audit`; JSONL with an "
                   "id per line, or one id a line); counted in the report")
    b.add_argument("--pool-splits", action="store_true",
                   help="ignore the corpus's own train/validation/test folders and pool all speakers")
    add_progress_flag(b)
    b.set_defaults(func=run_build)

    s = sub.add_parser("show", help="print the report of a built subset",
                       description="Print the hours, speakers and stratum deviations of a built subset.")
    s.add_argument("out", type=Path, metavar="OUTDIR", help="a folder written by 'subset build'")
    s.set_defaults(func=run_show)


def run_build(args: argparse.Namespace) -> int:
    from kidconsole.subset.build import build_subset
    from kidconsole.subset.strata import DEFAULT_AGE_EDGES, DEFAULT_DURATION_EDGES, DEFAULT_SNR_EDGES

    def edges(text: str | None, name: str, default):
        return parse_numbers(text, what=name) if text else default

    result = build_subset(
        args.manifest, args.out,
        hours=args.hours,
        split_hours=parse_numbers(args.split_hours, what="--split-hours") if args.split_hours else None,
        split_shares=parse_numbers(args.split, what="--split"),
        fractions=parse_numbers(args.fractions, what="--fractions"),
        max_val_samples=parse_max_val_samples(args.max_val_samples, what="--max-val-samples"),
        seed=args.seed,
        age_edges=edges(args.age_edges, "--age-edges", DEFAULT_AGE_EDGES),
        snr_edges=edges(args.snr_edges, "--snr-edges", DEFAULT_SNR_EDGES),
        duration_edges=edges(args.duration_edges, "--duration-edges", DEFAULT_DURATION_EDGES),
        use_source_splits=not args.pool_splits,
        progress=show_progress(args),
        names=CLI_NAMES,
        exclude=args.exclude,
    )
    print_report(result.to_dict())
    return 0


def run_show(args: argparse.Namespace) -> int:
    path = args.out / "report.json"
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise KidconsoleError(f"{path}: {e.strerror}; is {args.out} a folder written by 'subset build'?") from e
    except json.JSONDecodeError as e:
        raise KidconsoleError(f"{path}: not JSON ({e.msg})") from e
    print_report(report)
    return 0


def print_report(report: dict) -> None:
    """The per-output table of a report (as in report.json) on stdout."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"subset of {report['manifest']} -> {report['out_dir']}")
    for col in ("output", "target h", "hours", "miss", "utterances", "speakers", "max dev (pp)"):
        table.add_column(col, justify="left" if col == "output" else "right", no_wrap=col == "output")
    for name, s in report["outputs"].items():
        miss = s.get("hours_error")
        table.add_row(name, f"{s['target_hours']:.2f}" if s.get("target_hours") else "", f"{s['hours']:.2f}",
                      f"{miss * 100:+.2f}%" if miss is not None else "", f"{s['utterances']:,}",
                      f"{s['speakers']:,}", f"{s['max_deviation_pp']:.2f}")
    console = Console()
    console.print(table)
    e = report.get("excluded")
    if e:
        console.print(f"excluded {e['rows']:,} rows ({e['hours']:.2f} h) of the {e['ids']:,} ids listed in {e['file']}"
                      + (f"; {e['not_found']:,} of them are not in the manifest" if e["not_found"] else ""),
                      highlight=False, markup=False)
    for w in report.get("warnings", []):
        console.print(f"[{WARNING}]warning:[/] {w}", highlight=False)
    console.print(f"report: {Path(report['out_dir']) / 'report.md'}", highlight=False)
