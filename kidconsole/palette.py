"""Every colour kidconsole shows, in one place: the console (Textual) and the CLI (Rich) both take theirs here.

Hex colours read on dark and light backgrounds; Rich and Textual map them
down on 256-colour terminals. A run state, an error kind or a verdict has one
colour everywhere: a stopped run is grey on the dashboard and in ``run ls``,
an insertion is green in the console's decodes and in ``kidconsole report``.
"""

from __future__ import annotations

BLUE = "#4e9bf5"
ORANGE = "#f08c2e"
GREEN = "#3fb86b"
PINK = "#e0559a"
VIOLET = "#a77bf0"
TEAL = "#23b5b5"
MUSTARD = "#d4b21f"
AMBER = "#d4a017"
RED = "#e5534b"
OLIVE = "#8c9c3a"
BROWN = "#b07d5a"
GREY = "#a0a0a0"

# One per run, picked by a hash of its name (kidconsole.tui.colors); distinct from each other.
RUN_COLORS = (BLUE, ORANGE, GREEN, PINK, VIOLET, TEAL, MUSTARD, RED, OLIVE, BROWN)

STATE_STYLES = {
    "queued": VIOLET, "pending": GREY, "starting": BLUE, "running": GREEN, "evaluating": TEAL, "stalled": MUSTARD,
    "interrupted": RED, "failed": f"bold {RED}", "stopped": GREY, "finished": f"bold {GREEN}",
}

# Aligned decodes: substitutions, deletions, insertions (each also has a visible mark).
OP_STYLES = {"equal": "", "substitute": f"bold {AMBER}", "delete": f"bold {RED}", "insert": f"bold {GREEN}"}

OK = GREEN               # a step done, a target met
INFO = TEAL              # a step under way
BETTER = GREEN           # a significant improvement
WORSE = RED              # a significant regression
WARNING = MUSTARD        # skipped samples, skipped lines, low-confidence figures
ERROR = f"bold {RED}"
PROGRESS = BLUE          # progress bars
PARTIAL = RED            # an incomplete checkpoint
BEST = f"bold {GREEN}"   # the best checkpoint

# The confusion matrix: an empty cell, and the most confused one.
HEAT_LOW = "#26262e"
HEAT_HIGH = RED
HEAT_INK = ("white", "black")  # text on a cool cell, on a hot one

# A chart drawn outside a themed widget (tests, benchmarks).
CHART_BACKGROUND = "#000000"
CHART_FOREGROUND = "#c0c0c0"


def state_style(state: str) -> str:
    return STATE_STYLES.get(state, "")
