"""``kidconsole demo``: the whole mission on a CPU in minutes (see docs/demo.md)."""

from __future__ import annotations

import argparse

from kidconsole.cli import add_progress_flag
from kidconsole.extras import needing


HELP = "the whole mission on a CPU: synthetic corpus, base model, two LoRA runs, the console"
DESCRIPTION = ("Generate a synthetic corpus of adult and child voices, train a tiny base phoneme model on the adults "
               "(cached), score it on the children, adapt it with two LoRA runs side by side and open the console on "
               "them; with --headless, print the figures and the per-age / per-SNR reports instead and exit 1 if a "
               "fine-tuned run does not beat the base model. It ends by exporting the better run to ONNX fp32 and "
               "INT8, each scored on the children's test split, and printing the export table.")


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--work", default="work/demo", metavar="DIR",
                   help="work folder: corpus, manifests, cached base model, runs (default work/demo)")
    p.add_argument("--headless", action="store_true", help="no console: a live table, then figures and reports")
    p.add_argument("--quick", action="store_true", help="a smaller, shorter setting (CI); still trains and compares")
    p.add_argument("--fresh", action="store_true", help="delete the work folder first (nothing reused)")
    p.add_argument("--seed", type=int, default=0, help="corpus and subset seed (default 0)")
    add_progress_flag(p)
    p.add_argument("--no-export", action="store_true", help="skip the closing ONNX / INT8 export of the better run")
    p.set_defaults(func=needing("train", "kidconsole demo", run))


def run(args) -> int:
    from kidconsole.demo import run_demo

    return run_demo(args.work, headless=args.headless, quick=args.quick, fresh=args.fresh, seed=args.seed,
                    progress=not args.no_progress, export=not args.no_export)
