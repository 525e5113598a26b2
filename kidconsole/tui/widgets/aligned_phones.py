"""The reference phones as forced-aligned to the audio: each phone with its start time and how sure the
model is of it, so "the first phone is dropped" can be checked against the audio's first 200 ms.

Three lines per row: the phones, their start times (seconds) and their posteriors; a phone the model
doubts (its GOP below zero: another phone was likelier there) is marked and coloured. Wraps like the
aligned decode above it. Everything shown comes from a file: it is rendered as text, never as markup.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from kidconsole import palette
from kidconsole.shown import visible

LABELS = ("ref ", "at  ", "p   ")
DOUBT = "?"


def alignment_lines(phones: list[dict], width: int) -> list[Text]:
    """Triples of phone / start / posterior lines at most ``width`` cells wide."""
    width = max(width, len(LABELS[0]) + 6)
    lines: list[Text] = []
    rows = [Text(label, style="dim") for label in LABELS]
    for ph in phones:
        name = visible(ph.get("phone", "?"))
        doubt = isinstance(ph.get("gop"), (int, float)) and ph["gop"] < 0
        cells = (name + (DOUBT if doubt else ""), f"{float(ph.get('start', 0)):.2f}",
                 f"{float(ph.get('posterior', 0)):.2f}")
        cell = max(map(len, cells))
        if rows[0].cell_len + cell + 1 > width and rows[0].cell_len > len(LABELS[0]):
            lines += rows
            rows = [Text(" " * len(label)) for label in LABELS]
        style = palette.WARNING if doubt else ""
        for row, text in zip(rows, cells):
            row.append(text.ljust(cell), style if row is not rows[1] else "dim")
            row.append(" ")
    if rows[0].cell_len > len(LABELS[0]) or not lines:
        lines += rows
    for line in lines:
        line.rstrip()
    return lines


class AlignedPhones(Static):
    """One utterance's forced alignment: a heading (score, misfit) and the phone rows, re-wrapped on resize."""

    DEFAULT_CSS = "AlignedPhones { height: auto; margin-bottom: 1; }"

    def __init__(self, alignment: dict, **kwargs):
        super().__init__(**kwargs)
        self.alignment = alignment

    def on_resize(self) -> None:
        self.update(self._content())

    def on_mount(self) -> None:
        self.update(self._content())

    def _content(self) -> Text:
        a = self.alignment
        phones = a.get("phones") if isinstance(a.get("phones"), list) else []
        doubted = sum(1 for p in phones if isinstance(p, dict) and isinstance(p.get("gop"), (int, float))
                      and p["gop"] < 0)
        head = Text.assemble(("forced alignment of the reference", "bold"),
                             f"  score {float(a.get('score', 0)):.3f}/frame  misfit {float(a.get('gap', 0)):.3f}  ",
                             (f"{doubted} doubted (GOP < 0, marked {DOUBT})", palette.WARNING if doubted else "dim"))
        body = alignment_lines([p for p in phones if isinstance(p, dict)], self.size.width or 80)
        return Text("\n").join([head, *body])
