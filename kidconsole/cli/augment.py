"""``kidconsole augment preview CONFIG --utterance ID [--phase N] -o DIR``: hear and see a phase's augmentation.

Writes the utterance as it is and as each of the phase's augmentations makes it (WAV), with a spectrogram
of each (PNG), by ``python -m trainers.augment_preview`` (the augmentation needs the trainer's libraries).
See docs/training.md, Waveform augmentation.
"""

from __future__ import annotations

import argparse

from kidconsole.cli import as_module_command
from kidconsole.job_arguments import add_augment_preview_arguments


HELP = "hear and see what a phase's waveform augmentation does to an utterance"
DESCRIPTION = ("preview: write the utterance as it is and as each augmentation of the phase makes it alone, at "
               "probability 1 with the phase's ranges, then as the whole chain draws it in the given epoch (what "
               "the trainer feeds the model), each as a WAV with a spectrogram PNG beside it, and a table of what "
               "was written. Copy the folder over SSH and listen before spending GPU days.")


def register(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="augment_command", metavar="ACTION", required=True)
    preview = sub.add_parser("preview", help=HELP, description=DESCRIPTION)
    as_module_command(preview, "trainers.augment_preview", add_augment_preview_arguments)
