"""``kidconsole pseudo RUN AUDIO -o pseudo.jsonl --min-confidence C``: pseudo-labels for unlabelled audio.

Starts ``python -m trainers.pseudo`` (decoding needs the model) with the same arguments. See
docs/selection.md.
"""

from __future__ import annotations

import argparse

from kidconsole.cli import add_model_arguments, as_module_command, add_scoring_flags


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p, "run", "RUN")
    p.add_argument("audio", metavar="AUDIO", help="a folder of audio files (searched recursively; the speaker is "
                   "each file's folder) or a manifest (.jsonl) whose phones are to be decoded")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the pseudo-labelled manifest")
    p.add_argument("--min-confidence", type=float, required=True, metavar="C",
                   help="keep utterances whose mean CTC confidence is at least C (0-1)")
    p.add_argument("--age-confidence", action="append", default=[], metavar="BUCKET=C",
                   help="another threshold for one age bucket (5-6=0.9; buckets <5, 5-6, 7-8, 9-10, 11-17, "
                   "18+, unknown); repeatable")
    add_scoring_flags(p)


HELP = "pseudo-label unlabelled audio with a trained model"
DESCRIPTION = ("Decode unlabelled audio (a folder of audio files, or a manifest without phones) and keep the "
               "utterances the model is confident of (mean per-frame CTC posterior at least --min-confidence, or the "
               "threshold of the utterance's age bucket): manifest rows with the decoded phones, pseudo: true and the"
               " confidence, ready to mix into a phase (phases[].manifests).")


def register(p: argparse.ArgumentParser) -> None:
    as_module_command(p, "trainers.pseudo", add_arguments)
