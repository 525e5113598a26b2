"""``kidconsole pseudo RUN AUDIO -o pseudo.jsonl --min-confidence C``: pseudo-labels for unlabelled audio.

Starts ``python -m trainers.pseudo`` (decoding needs the model) with the same arguments. See
docs/selection.md.
"""

from __future__ import annotations

import argparse

from kidconsole.cli import as_module_command
from kidconsole.job_arguments import add_pseudo_arguments


HELP = "pseudo-label unlabelled audio with a trained model"
DESCRIPTION = ("Decode unlabelled audio (a folder of audio files, or a manifest without phones) and keep the "
               "utterances the model is confident of (mean per-frame CTC posterior at least --min-confidence, or the "
               "threshold of the utterance's age bucket): manifest rows with the decoded phones, pseudo: true and the"
               " confidence, ready to mix into a phase (phases[].manifests).")


def register(p: argparse.ArgumentParser) -> None:
    as_module_command(p, "trainers.pseudo", add_pseudo_arguments)
