"""``kidconsole select RUN --manifest M --hours H``: the hours of a pool the model finds hardest.

Starts ``python -m trainers.select`` (the scoring needs the model) with the same arguments; its
progress and report go to this terminal. See docs/selection.md.
"""

from __future__ import annotations

import argparse

from kidconsole.cli import add_model_arguments, as_module_command, add_scoring_flags

BY = ("confidence", "phone-confidence", "loss")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p, "run", "RUN")
    p.add_argument("--manifest", required=True, metavar="M", help="the pool to pick from (JSONL manifest)")
    p.add_argument("--hours", type=float, required=True, metavar="H", help="hours to pick")
    p.add_argument("-o", "--output", metavar="FILE", default="picked.jsonl",
                   help="the picked manifest (default picked.jsonl); FILE.scores.jsonl and FILE.report.json "
                   "beside it")
    p.add_argument("--by", choices=BY, default="confidence",
                   help="hardest = lowest mean confidence over the frames (default), lowest mean confidence of "
                   "the decoded phones (an empty decode lowest), or highest CTC loss per phone (labelled rows)")
    p.add_argument("--speaker-hours", type=float, metavar="S",
                   help="the most hours one speaker may give (default: twice an equal share of H)")
    add_scoring_flags(p)


HELP = "pick the hours of a pool the model finds hardest (active learning)"
DESCRIPTION = ("Score every utterance of a pool with a trained model (mean per-frame CTC confidence; the CTC loss per"
               " phone where the row has phones), then pick the H hours it finds hardest, stratified by age and SNR "
               "so that no bucket is starved, with a cap per speaker. Scores are written as they are made: started "
               "again, it resumes. Writes the picked manifest, its scores and a report (picks vs pool; confidence vs "
               "PER on labelled rows).")


def register(p: argparse.ArgumentParser) -> None:
    as_module_command(p, "trainers.select", add_arguments)
