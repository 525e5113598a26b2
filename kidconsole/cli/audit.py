"""``kidconsole audit MODEL MANIFEST [--top N]``: the utterances whose label does not fit their audio.

Starts ``python -m trainers.audit`` with the same arguments (it aligns with the model); its progress and
report go to this terminal. See docs/alignment.md.
"""

from __future__ import annotations

import argparse

from kidconsole.cli import as_module_command
from kidconsole.job_arguments import add_audit_arguments


HELP = "find the labels that do not fit their audio (alignment scores), for subset build --exclude"
DESCRIPTION = ("Force-aligns every utterance's label with MODEL and ranks the labels by how badly they fit the audio:"
               " the alignment's cost per frame against the model's free decode, with the decode's PER and length "
               "ratio as the reasons. Writes the suspects as a manifest (for `kidconsole subset build --exclude`), "
               "a report (top suspects, their spread over age groups and SNR) and the alignments (resumable).")


def register(p: argparse.ArgumentParser) -> None:
    as_module_command(p, "trainers.audit", add_audit_arguments)
