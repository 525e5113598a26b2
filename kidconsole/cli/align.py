"""``kidconsole align MODEL MANIFEST [-o alignments.jsonl]``: where each reference phone is in the audio.

Starts ``python -m trainers.align`` with the same arguments (the alignment needs the model); its progress and
summary go to this terminal. See docs/alignment.md.
"""

from __future__ import annotations

import argparse

from kidconsole.cli import as_module_command
from kidconsole.job_arguments import add_align_arguments


HELP = "force-align reference phones to the audio: phone times, posteriors, GOP scores"
DESCRIPTION = ("CTC forced alignment of each utterance's reference phones with MODEL (a run, an export, a baseline): "
               "each phone's start and end time, its mean posterior and a goodness-of-pronunciation score (its log "
               "posterior against the best competing phone), and the utterance's alignment score per frame. "
               "Streams the manifest, writes as it goes and resumes where it stopped.")


def register(p: argparse.ArgumentParser) -> None:
    as_module_command(p, "trainers.align", add_align_arguments)
