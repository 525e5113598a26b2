"""A line chart drawn in braille dots, fast enough for live runs of any length.

Each trace arrives already downsampled to one (min, max) bucket per dot column
(``Series.downsample``), so drawing costs the widget's size, not the number of
points. Within a column the trace covers its bucket's whole range, and
neighbouring columns are joined, so spikes stay visible and lines stay
continuous; sparse traces (evaluations) are joined by straight lines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.color import Color
from textual.strip import Strip
from textual.widget import Widget

from kidconsole.palette import CHART_BACKGROUND, CHART_FOREGROUND
from kidconsole.shown import visible

GUTTER = 7  # y-axis labels
# braille dot bits by (row within cell, column within cell)
_DOT_BITS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]])


@dataclass
class Trace:
    """One curve: bucket centres ``xs`` with the min ``lo`` and max ``hi`` of each bucket."""

    xs: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    color: str
    faint: bool = False


@dataclass
class ChartData:
    traces: list[Trace] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)  # (label, colour)
    x_kind: str = "step"  # step | samples | time
    log_y: bool = False
    note: str = ""
    x_range: tuple[float, float] | None = None  # the span the traces were bucketed over


def plot_columns(width: int) -> int:
    """Dot columns of the plot area of a chart ``width`` cells wide: the bucket count to ask for."""
    return max(0, width - GUTTER - 1) * 2


def fmt_value(v: float) -> str:
    if not math.isfinite(v):
        return "-"
    a = abs(v)
    if a != 0 and (a < 0.01 or a >= 1e5):
        return f"{v:.1e}"
    if a >= 1000:
        return f"{v / 1000:.1f}k"
    return f"{v:.3g}"


def fmt_x(v: float, kind: str) -> str:
    if not math.isfinite(v):
        return ""
    if kind == "time":
        s = int(round(v))
        if s >= 3600:
            return f"{s // 3600}h{s % 3600 // 60:02d}m"
        return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"
    for unit, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(v) >= unit * 0.9995:
            return f"{v / unit:.3g}{suffix}"
    return f"{int(round(v))}"


def _prepare(trace: Trace, log_y: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xs = np.asarray(trace.xs, dtype=float)
    lo = np.asarray(trace.lo, dtype=float)
    hi = np.asarray(trace.hi, dtype=float)
    if log_y:
        with np.errstate(divide="ignore", invalid="ignore"):
            lo = np.where(lo > 0, np.log10(np.where(lo > 0, lo, 1)), np.nan)
            hi = np.where(hi > 0, np.log10(np.where(hi > 0, hi, 1)), np.nan)
        lo = np.where(np.isfinite(lo), lo, hi)  # a bucket dipping to <= 0 keeps its top
    ok = np.isfinite(xs) & np.isfinite(lo) & np.isfinite(hi)
    return xs[ok], lo[ok], hi[ok]


def _dots(xs, lo, hi, x0, x1, y0, y1, cols, rows) -> np.ndarray:
    """Boolean (rows, cols) dot grid of one trace, row 0 at the top."""
    grid = np.zeros((rows, cols), dtype=bool)
    if not len(xs):
        return grid
    px = np.rint((xs - x0) / (x1 - x0) * (cols - 1)).astype(int) if x1 > x0 else np.zeros(len(xs), int)
    scale = (rows - 1) / (y1 - y0) if y1 > y0 else 0.0
    top_row = np.clip(np.rint((y1 - hi) * scale), 0, rows - 1).astype(int) if scale else np.full(len(xs), rows // 2)
    bot_row = np.clip(np.rint((y1 - lo) * scale), 0, rows - 1).astype(int) if scale else np.full(len(xs), rows // 2)
    px = np.clip(px, 0, cols - 1)
    top = np.full(cols, rows)
    bot = np.full(cols, -1)
    np.minimum.at(top, px, top_row)
    np.maximum.at(bot, px, bot_row)
    present = np.nonzero(bot >= 0)[0]
    if len(present) > 1:  # join sparse points by straight lines
        span = np.arange(present[0], present[-1] + 1)
        missing = span[bot[span] < 0]
        if len(missing):
            mid = (top[present] + bot[present]) / 2
            yy = np.rint(np.interp(missing, present, mid)).astype(int)
            top[missing] = yy
            bot[missing] = yy
        present = span
    a, b = top[present], bot[present]
    # join neighbours: each column reaches to where the previous one ended
    a2, b2 = a.copy(), b.copy()
    a2[1:] = np.minimum(a[1:], b[:-1])
    b2[1:] = np.maximum(b[1:], a[:-1])
    r = np.arange(rows)[:, None]
    grid[:, present] = (r >= a2[None, :]) & (r <= b2[None, :])
    return grid


def render_chart(data: ChartData, title: str, width: int, height: int,
                 background: str = CHART_BACKGROUND, foreground: str = CHART_FOREGROUND) -> list[Strip]:
    """The chart as ``height`` strips of ``width`` cells."""
    fg = Style(color=foreground)
    axis = Style(color=Color.parse(foreground).blend(Color.parse(background), 0.5).hex)
    head = [Segment(visible(title), Style(color=foreground, bold=True))]
    for label, color in data.legend:
        head += [Segment("  "), Segment("■ ", Style(color=color)), Segment(visible(label), fg)]  # run names
    if data.note:
        head += [Segment("  " + data.note, axis)]
    lines = [Strip(head).crop(0, width).extend_cell_length(width)]
    pw, ph = width - GUTTER - 1, height - 2
    if pw < 4 or ph < 2:
        return (lines + [Strip.blank(width)] * height)[:height]

    cols, rows = pw * 2, ph * 4
    prepared = [(_prepare(t, data.log_y), t) for t in data.traces]
    xs_all = [p[0] for p, _ in prepared if len(p[0])]
    if not xs_all:
        msg = "no data yet"
        body = [Strip.blank(width)] * (height - 1)
        body[ph // 2] = Strip([Segment(" " * ((width - len(msg)) // 2) + msg, axis)]).extend_cell_length(width)
        return lines + body
    x0 = min(float(x.min()) for x in xs_all)
    x1 = max(float(x.max()) for x in xs_all)
    if data.x_range is not None:
        x0, x1 = min(x0, data.x_range[0]), max(x1, data.x_range[1])
    y0 = min(float(p[1].min()) for p, _ in prepared if len(p[0]))
    y1 = max(float(p[2].max()) for p, _ in prepared if len(p[0]))
    if y1 == y0:
        pad = abs(y0) * 0.05 or 0.5
        y0, y1 = y0 - pad, y1 + pad

    bg = Color.parse(background)
    codes = np.zeros((ph, pw), dtype=int)
    owner = np.full((ph, pw), -1)
    styles = []
    # faint traces first so the strong ones own the cells they share
    order = sorted(range(len(prepared)), key=lambda i: not prepared[i][1].faint)
    for k, i in enumerate(order):
        (xs, lo, hi), trace = prepared[i]
        color = Color.parse(trace.color)
        styles.append(Style(color=(color.blend(bg, 0.6) if trace.faint else color).hex))
        bits = (_dots(xs, lo, hi, x0, x1, y0, y1, cols, rows).reshape(ph, 4, pw, 2) * _DOT_BITS[None, :, None, :]).sum(axis=(1, 3))
        codes |= bits
        owner[bits > 0] = k

    def ylab(v: float) -> str:
        return fmt_value(10 ** v if data.log_y else v)

    labels = {0: ylab(y1), ph - 1: ylab(y0)}
    if ph >= 5:
        labels[(ph - 1) // 2] = ylab(y1 - (y1 - y0) * ((ph - 1) // 2) / (ph - 1))
    for row in range(ph):
        label = labels.get(row)
        segs = [Segment((label or "")[:GUTTER].rjust(GUTTER), axis), Segment("┤" if label else "│", axis)]
        chars: list[str] = []
        run_owner = None
        for col in range(pw):
            o = owner[row, col]
            if o != run_owner and chars:
                segs.append(Segment("".join(chars), styles[run_owner] if run_owner >= 0 else None))
                chars = []
            run_owner = o
            c = codes[row, col]
            chars.append(chr(0x2800 + c) if c else " ")
        segs.append(Segment("".join(chars), styles[run_owner] if run_owner is not None and run_owner >= 0 else None))
        lines.append(Strip(segs, width))

    left, mid, right = fmt_x(x0, data.x_kind), fmt_x((x0 + x1) / 2, data.x_kind), fmt_x(x1, data.x_kind)
    xline = [" "] * pw
    for pos, text in ((0, left), ((pw - len(mid)) // 2, mid), (pw - len(right), right)):
        for j, ch in enumerate(text):
            if 0 <= pos + j < pw:
                xline[pos + j] = ch
    lines.append(Strip([Segment(data.x_kind[:GUTTER].rjust(GUTTER), axis), Segment("└", axis),
                        Segment("".join(xline), axis)], width))
    return lines


class Chart(Widget, can_focus=True):
    """A titled chart; set its data with ``update_data``, size it with CSS."""

    DEFAULT_CSS = """
    Chart { height: 1fr; min-height: 6; }
    Chart:focus { background: $boost; }
    """

    def __init__(self, title: str, *, name: str | None = None, id: str | None = None, classes: str | None = None):
        super().__init__(name=name, id=id, classes=classes)
        self.title = title
        self.data = ChartData()
        self._lines: list[Strip] | None = None
        self._key: tuple | None = None

    def update_data(self, data: ChartData) -> None:
        self.data = data
        self._lines = None
        self.refresh()

    def _render_all(self) -> list[Strip]:
        bg = self.styles.background if self.styles.background.a else self.app.current_theme.background
        base = self.background_colors[1]
        fg = self.styles.color if self.styles.color.a else Color.parse(CHART_FOREGROUND)
        key = (self.size, base.hex, fg.hex)
        if self._lines is None or key != self._key:
            self._lines = render_chart(self.data, self.title, self.size.width, self.size.height,
                                       background=base.hex, foreground=fg.hex)
            self._key = key
        return self._lines

    def render_line(self, y: int) -> Strip:
        lines = self._render_all()
        return lines[y] if y < len(lines) else Strip.blank(self.size.width)
