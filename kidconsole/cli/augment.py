"""``kidconsole augment preview CONFIG --utterance ID [--phase N] -o DIR``: hear and see a phase's augmentation.

Writes the utterance as it is and as each of the phase's augmentations makes it (WAV), with a spectrogram
of each (PNG), by ``python -m trainers.augment_preview`` (the augmentation needs the trainer's libraries).
See docs/training.md, Waveform augmentation.
"""

from __future__ import annotations

import argparse

from kidconsole.cli import as_module_command


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", metavar="CONFIG", help="a run config (YAML), or a run directory (its config.yaml)")
    p.add_argument("--utterance", required=True, metavar="ID", help="the utterance's id in the phase's train "
                   "manifest(s)")
    p.add_argument("--phase", type=int, default=1, metavar="N", help="the phase whose augmentation is shown "
                   "(1-based; default 1)")
    p.add_argument("--epoch", type=int, default=1, metavar="E", help="the epoch whose draws are shown (1-based; "
                   "default 1): the trainer's own draws for the utterance")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the WAV and PNG files")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a config key, as `run launch --set` (repeatable)")


HELP = "hear and see what a phase's waveform augmentation does to an utterance"
DESCRIPTION = ("preview: write the utterance as it is and as each augmentation of the phase makes it alone, at "
               "probability 1 with the phase's ranges, then as the whole chain draws it in the given epoch (what "
               "the trainer feeds the model), each as a WAV with a spectrogram PNG beside it, and a table of what "
               "was written. Copy the folder over SSH and listen before spending GPU days.")


def register(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="augment_command", metavar="ACTION", required=True)
    preview = sub.add_parser("preview", help=HELP, description=DESCRIPTION)
    as_module_command(preview, "trainers.augment_preview", add_arguments)
