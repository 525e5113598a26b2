"""``kidconsole select RUN --manifest M --hours H``: the hours of a pool the model finds hardest.

Starts ``python -m trainers.select`` (the scoring needs the model) with the same arguments; its
progress and report go to this terminal. See docs/selection.md.
"""

from __future__ import annotations

import argparse

from kidconsole.cli import as_module_command
from kidconsole.job_arguments import add_select_arguments

HELP = "pick the hours of a pool the model finds hardest (active learning)"
DESCRIPTION = ("Score every utterance of a pool with a trained model (mean per-frame CTC confidence; the CTC loss per"
               " phone where the row has phones), then pick the H hours it finds hardest, stratified by age and SNR "
               "so that no bucket is starved, with a cap per speaker. Scores are written as they are made: started "
               "again, it resumes. Writes the picked manifest, its scores and a report (picks vs pool; confidence vs "
               "PER on labelled rows).")


def register(p: argparse.ArgumentParser) -> None:
    as_module_command(p, "trainers.select", add_select_arguments)
