"""A phone confusion matrix: reference phones down, hypothesis phones across,
cells shaded by the share of the row's occurrences that went to that column.

The diagonal (hits) stays unshaded so the errors stand out; the ``∅`` row
holds insertions and the ``∅`` column deletions. A cell cursor walks the
matrix; the screen shows what the highlighted cell holds.
"""

from __future__ import annotations

import math

from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.widgets import DataTable

from kidconsole.palette import HEAT_HIGH, HEAT_INK, HEAT_LOW
from kidconsole.report.phonemes import EPS, Confusion
from kidconsole.shown import text, visible

LOW = Color.parse(HEAT_LOW).triplet    # background of an empty cell
HIGH = Color.parse(HEAT_HIGH).triplet  # the most confused cell


def compact(n: int) -> str:
    return str(n) if n < 1000 else f"{n / 1000:.1f}k" if n < 100_000 else f"{n // 1000}k"


def heat_style(level: float) -> Style:
    """Background for a 0..1 level (square-root scaled, so small shares still show)."""
    t = math.sqrt(max(0.0, min(1.0, level)))
    rgb = tuple(round(lo + (hi - lo) * t) for lo, hi in zip(LOW, HIGH))
    return Style(bgcolor=Color.from_rgb(*rgb), color=HEAT_INK[t > 0.6])


class ConfusionMatrix(DataTable):
    """The matrix of a :class:`Confusion` as a cell-cursor table."""

    DEFAULT_CSS = "ConfusionMatrix { height: 1fr; }"

    def __init__(self, conf: Confusion, **kwargs):
        super().__init__(cursor_type="cell", show_row_labels=True, **kwargs)
        self.conf = conf
        self.row_totals = conf.matrix.sum(axis=1)
        self.share = conf.shares()
        self.scale = max(float(self.share.max()), 1e-9)

    def on_mount(self) -> None:
        labels = self.conf.labels
        for j, h in enumerate(labels):
            self.add_column(text(h, "bold"), key=str(j), width=max(4, len(visible(h))))
        for i, r in enumerate(labels):
            cells = []
            for j in range(len(labels)):
                n = int(self.conf.matrix[i, j])
                if i == j:
                    cells.append(Text(compact(n), style="dim", justify="right"))
                elif n:
                    cells.append(Text(compact(n), style=heat_style(self.share[i, j] / self.scale), justify="right"))
                else:
                    cells.append(Text("·", style="dim", justify="right"))
            self.add_row(*cells, key=str(i), label=text(r, "bold"))

    def cell_info(self, row: int, column: int) -> tuple[str, str, int, float]:
        """``(ref, hyp, count, share of the reference phone's occurrences)``."""
        labels = self.conf.labels
        n = int(self.conf.matrix[row, column])
        total = int(self.row_totals[row])
        share = n / total if labels[row] != EPS and total else float("nan")
        return labels[row], labels[column], n, share

