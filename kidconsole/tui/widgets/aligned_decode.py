"""Reference vs hypothesis, aligned phone by phone, errors coloured.

Substitutions, deletions and insertions get their own colour and a visible
mark (``·`` for the missing side), so the alignment reads without colour too.
Long utterances wrap in pairs of lines that stay aligned.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from kidconsole.palette import OP_STYLES
from kidconsole.shown import visible

GAP = "·"
LABELS = ("ref ", "hyp ")


def aligned_columns(ref: str, hyp: str) -> list[tuple[str, str, str]]:
    """``(op, ref_cell, hyp_cell)`` per aligned token, word separators kept so words stay readable; a cell's
    control characters shown (the phones come from disk)."""
    from kidconsole.metrics import align  # jiwer: only once a decode is shown

    return [(op, visible(r) if r is not None else GAP, visible(h) if h is not None else GAP)
            for op, r, h in align(ref.split(), hyp.split())]


def aligned_lines(ref: str, hyp: str, width: int) -> list[Text]:
    """Pairs of ``ref``/``hyp`` lines at most ``width`` cells wide."""
    width = max(width, len(LABELS[0]) + 4)
    lines: list[Text] = []
    r_line, h_line = Text(LABELS[0], style="dim"), Text(LABELS[1], style="dim")
    for op, r, h in aligned_columns(ref, hyp):
        cell = max(len(r), len(h))
        if r_line.cell_len + cell + 1 > width and r_line.cell_len > len(LABELS[0]):
            lines += [r_line, h_line]
            r_line, h_line = Text(" " * len(LABELS[0])), Text(" " * len(LABELS[1]))
        style = OP_STYLES[op]
        r_line.append(r.ljust(cell), style)
        h_line.append(h.ljust(cell), style)
        r_line.append(" ")
        h_line.append(" ")
    if r_line.cell_len > len(LABELS[0]) or not lines:
        lines += [r_line, h_line]
    for line in lines:
        line.rstrip()
    return lines


def error_summary(ref: str, hyp: str) -> tuple[int, int, int, int]:
    """(substitutions, deletions, insertions, reference phones) of one decode, word separators aside."""
    cols = [c for c in aligned_columns(ref, hyp) if "|" not in (c[1], c[2])]
    subs = sum(op == "substitute" for op, _, _ in cols)
    dels = sum(op == "delete" for op, _, _ in cols)
    ins = sum(op == "insert" for op, _, _ in cols)
    n_ref = sum(op != "insert" for op, _, _ in cols)
    return subs, dels, ins, n_ref


class AlignedDecode(Static):
    """One decode: a heading (id, error counts) and the aligned pair, re-wrapped on resize."""

    DEFAULT_CSS = "AlignedDecode { height: auto; margin-bottom: 1; }"

    def __init__(self, utt_id: str, ref: str, hyp: str, **kwargs):
        super().__init__(**kwargs)
        self.utt_id, self.ref, self.hyp = utt_id, ref, hyp

    def on_resize(self) -> None:
        self.update(self._content())

    def on_mount(self) -> None:
        self.update(self._content())

    def _content(self) -> Text:
        subs, dels, ins, n_ref = error_summary(self.ref, self.hyp)
        head = Text.assemble((visible(self.utt_id), "bold"), "  ", (f"S {subs}", OP_STYLES["substitute"]), " ",
                             (f"D {dels}", OP_STYLES["delete"]), " ", (f"I {ins}", OP_STYLES["insert"]),
                             f"  PER {(subs + dels + ins) / max(n_ref, 1):.1%}")
        body = aligned_lines(self.ref, self.hyp, self.size.width or 80)
        return Text("\n").join([head, *body])
