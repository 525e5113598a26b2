"""``kidconsole audit MODEL MANIFEST [--top N]``: the utterances whose label does not fit their audio.

Starts ``python -m trainers.audit`` with the same arguments (it aligns with the model); its progress and
report go to this terminal. See docs/alignment.md.
"""

from __future__ import annotations

import argparse

from kidconsole.cli import add_model_arguments, add_scoring_flags, as_module_command


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p)
    p.add_argument("manifest", metavar="MANIFEST", help="the labelled utterances to audit (JSONL manifest)")
    p.add_argument("-o", "--output", metavar="FILE", default="suspects.jsonl",
                   help="the suspects' manifest rows (default suspects.jsonl); FILE.report.json / .md and the "
                   "alignments FILE.alignments.jsonl (resumed when run again) beside it")
    p.add_argument("--top", type=int, metavar="N", help="the N worst labels are the suspects (default: the outliers)")
    p.add_argument("--threshold", type=float, default=3.5, metavar="Z",
                   help="without --top: a label is suspect when its misfit is more than Z robust standard "
                   "deviations above the median (default 3.5)")
    p.add_argument("--show", type=int, default=20, metavar="N", help="suspects printed here (default 20)")
    add_scoring_flags(p)


HELP = "find the labels that do not fit their audio (alignment scores), for subset build --exclude"
DESCRIPTION = ("Force-aligns every utterance's label with MODEL and ranks the labels by how badly they fit the audio:"
               " the alignment's cost per frame against the model's free decode, with the decode's PER and length "
               "ratio as the reasons. Writes the suspects as a manifest (for `kidconsole subset build --exclude`), "
               "a report (top suspects, their spread over age groups and SNR) and the alignments (resumable).")


def register(p: argparse.ArgumentParser) -> None:
    as_module_command(p, "trainers.audit", add_arguments)
