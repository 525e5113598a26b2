"""Live charts: train loss (raw faint, debiased EMA strong), eval loss, PER, CER, LR (and each LR group's),
PER by age group, grad norm, and any other series the runs have (``m`` picks it: every evaluation metric a
run written by another tool logged, its epoch, its evaluation runtime).

The runs overlaid are the marked ones (all when none is marked), each in its
colour, on shared axes. Every chart downsamples each series to its own width
(one min/max bucket per dot column), so a run of 332,000 steps draws as fast
as one of 300.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable

import numpy as np
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.widgets import Footer, Header, Static

from kidconsole.palette import RUN_COLORS
from kidconsole.rundir.series_names import LR_GROUP_PREFIX
from kidconsole.runs.series import Series
from kidconsole.shown import text
from kidconsole.tui.smoothing import DebiasedEma
from kidconsole.tui.watcher import SeriesTail
from kidconsole.tui.widgets.chart import Chart, ChartData, Trace, plot_columns
from kidconsole.tui.screens.pushed import PushedScreen

X_AXES = ("step", "samples", "time")
EMA_WEIGHTS = (0.0, 0.6, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)


@dataclass(frozen=True)
class Panel:
    metric: str
    title: str
    smooth: bool = False
    # a series per bucket ("eval/per_age/5-6"): one run's buckets, or one bucket across several runs
    buckets: bool = False
    also: str = ""  # a prefix of more series per run, each its own curve (the LR of each train.lr_groups group)
    more: bool = False  # draws the series chosen with `m` among those no other panel draws


PANELS = (
    Panel("train/loss", "train loss", smooth=True),
    Panel("eval/loss", "eval loss"),
    Panel("eval/per", "PER"),
    Panel("eval/cer", "CER"),
    Panel("train/lr", "learning rate", also=LR_GROUP_PREFIX),
    Panel("eval/per_age", "PER by age", buckets=True),
    Panel("train/grad_norm", "grad norm"),
    Panel("", "more", more=True),
)


def bucket_order(label: str) -> tuple:
    """Buckets in the order of their values ("<5", "5-6" ... "18+"), ``unknown`` last."""
    m = re.search(r"-?\d+(\.\d+)?", label)
    first = float(m.group()) if m else math.inf
    return (label == "unknown", -math.inf if label.startswith("<") else first, label)


class _Smoothed:
    """The EMA of one series, extended with each new point, rebuilt when the series was rewritten."""

    def __init__(self, weight: float):
        self.ema = DebiasedEma(weight)
        self.series = Series()
        self.seen = 0
        self.last_x: float | None = None

    def update(self, tail: Callable[[int], SeriesTail]) -> Series:
        """Smooth the points ``tail(start)`` gives from where the last update stopped."""
        new = tail(self.seen)
        if new.length < self.seen or (self.seen and new.x_before != self.last_x):
            self.__init__(self.ema.weight)  # the run resumed from an earlier step: start over
            new = tail(0)
        if len(new.x):
            self.series.extend(new.x, self.ema.extend(new.y))
            self.seen = new.length
            self.last_x = float(new.x[-1])
        return self.series


class ChartsScreen(PushedScreen):
    TITLE = "Charts"
    BINDINGS = [
        Binding("x", "cycle_x", "X axis"),
        Binding("y", "log_y", "Log y"),
        Binding("plus,equals_sign", "ema(1)", "EMA+", key_display="+"),
        Binding("minus", "ema(-1)", "EMA-", key_display="-"),
        Binding("g", "grid", "Grid"),
        Binding("a", "next_bucket", "Age group"),
        Binding("m", "next_more", "More series"),
        *[Binding(str(i + 1), f"panel({i})", p.title, show=False) for i, p in enumerate(PANELS)],
        Binding("tab", "next_panel(1)", "Next chart", show=False),
        Binding("shift+tab", "next_panel(-1)", "Prev chart", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.x_axis = "step"
        self.log_y = False
        self.ema_weight = 0.9
        self.current = 0
        self.bucket: str | None = None  # the age group the PER-by-age chart follows across marked runs
        self.more: str | None = None  # the series the "more" chart draws
        self.grid = None  # None: decided by the terminal size on the first layout
        self._smoothed: dict[tuple[str, str, str], _Smoothed] = {}
        self._drawn: dict[int, tuple] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="chart-status", classes="screen-head")
        with Container(id="charts"):
            for i, panel in enumerate(PANELS):
                yield Chart(panel.title, id=f"chart-{i}")
        yield Footer()

    def on_mount(self) -> None:
        self.call_after_refresh(self._apply_layout)

    def on_screen_resume(self) -> None:
        self.redraw(force=True)

    def on_resize(self) -> None:
        self.call_after_refresh(self._apply_layout)

    def _apply_layout(self) -> None:
        if self.grid is None:
            self.grid = self.size.width >= 120 and self.size.height >= 34
        container = self.query_one("#charts")
        container.set_class(self.grid, "grid")
        for i, chart in enumerate(self.query(Chart)):
            chart.display = self.grid or i == self.current
        self.query_one(f"#chart-{self.current}", Chart).focus()
        self.call_after_refresh(self.redraw, True)

    def runs_changed(self) -> None:
        self.redraw()

    # ---- drawing
    def _status(self, keys: list[str]) -> str:
        ema = f"EMA {self.ema_weight:g}" if self.ema_weight else "EMA off"
        marked = "marked runs" if self.app.marked else "all runs"
        panel = PANELS[self.current]
        title = panel.title
        if panel.buckets and len(keys) > 1:
            title += f" {self._bucket(panel, keys) or '-'} (a: next age group)"
        elif panel.buckets and keys:
            title += f" of {self.app.views[keys[0]].name}"
        elif panel.more:
            title = f"{self._more(keys) or 'no other series'} (m: next)"
        return (f"{title} · x: {self.x_axis} · {ema} · log-y {'on' if self.log_y else 'off'}"
                f" · {len(keys)} {marked}")

    def redraw(self, force: bool = False) -> None:
        app = self.app
        keys = app.chart_keys()
        self.query_one("#chart-status", Static).update(text(self._status(keys)))  # it names a run
        revisions = tuple((k, app.views[k].revision) for k in keys)
        for i, chart in enumerate(self.query(Chart)):
            if not chart.display or not chart.size.width:
                continue
            stamp = (revisions, self.x_axis, self.log_y, self.ema_weight, self.bucket, self.more, chart.size)
            if not force and self._drawn.get(i) == stamp:
                continue
            self._drawn[i] = stamp
            if PANELS[i].more:
                chart.title = self._more(keys) or PANELS[i].title
            chart.update_data(self.chart_data(PANELS[i], keys, plot_columns(chart.size.width)))

    def _bucket_labels(self, panel: Panel, keys: list[str]) -> list[str]:
        labels = {m.removeprefix(panel.metric + "/") for k in keys for m in self.app.watcher.series_names(k)
                  if m.startswith(panel.metric + "/")}
        return sorted(labels, key=bucket_order)

    def _bucket(self, panel: Panel, keys: list[str]) -> str | None:
        """The bucket followed across runs: the chosen one, else the youngest group."""
        labels = self._bucket_labels(panel, keys)
        return self.bucket if self.bucket in labels else (labels[0] if labels else None)

    def _more_names(self, keys: list[str]) -> list[str]:
        """The series of the shown runs that no other panel draws."""
        drawn = [p for p in PANELS if not p.more]
        names = {m for k in keys for m in self.app.watcher.series_names(k)}
        return sorted(m for m in names if not any(m == p.metric or (p.buckets and m.startswith(p.metric + "/"))
                                                  or (p.also and m.startswith(p.also)) for p in drawn))

    def _more(self, keys: list[str]) -> str | None:
        """The series the "more" chart draws: the chosen one, else the first (evaluation metrics first)."""
        names = self._more_names(keys)
        if self.more in names:
            return self.more
        return next((m for m in names if m.startswith("eval/")), names[0] if names else None)

    def _lines(self, panel: Panel, keys: list[str]) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
        """What a panel draws: (run, series, colour) per line, and its legend. A bucket panel draws one run's
        buckets, each in a colour of its own, or with several runs one bucket in each run's colour."""
        app = self.app
        runs = [(k, app.run_colors[app.views[k].name]) for k in keys]
        if panel.more:
            metric = self._more(keys)
            return ([(k, metric, c) for k, c in runs] if metric else []), [(app.views[k].name, c) for k, c in runs]
        if not panel.buckets:
            lines, legend = [(k, panel.metric, c) for k, c in runs], [(app.views[k].name, c) for k, c in runs]
            for k in keys if panel.also else ():
                for m in sorted(m for m in app.watcher.series_names(k) if m.startswith(panel.also)):
                    label = f"{app.views[k].name} · {m.removeprefix(panel.also)}"
                    color = app.run_colors[label]  # the runs' book: a colour no run (or other group) has
                    lines.append((k, m, color))
                    legend.append((label, color))
            return lines, legend
        if len(keys) == 1:
            labels = self._bucket_labels(panel, keys)
            colors = [RUN_COLORS[i % len(RUN_COLORS)] for i in range(len(labels))]
            return ([(keys[0], f"{panel.metric}/{b}", c) for b, c in zip(labels, colors)],
                    list(zip(labels, colors)))
        bucket = self._bucket(panel, keys)
        if bucket is None:
            return [], [(app.views[k].name, c) for k, c in runs]
        return ([(k, f"{panel.metric}/{bucket}", c) for k, c in runs],
                [(f"{app.views[k].name} {bucket}", c) for k, c in runs])

    def chart_data(self, panel: Panel, keys: list[str], n_buckets: int) -> ChartData:
        app, watcher, axis = self.app, self.app.watcher, self.x_axis
        lines, legend = self._lines(panel, keys)
        found = [(k, m, c, span) for k, m, c in lines if (span := watcher.span(k, m, axis)) is not None]
        data = ChartData(legend=legend, x_kind=axis, log_y=self.log_y,
                         note=f"EMA {self.ema_weight:g}" if panel.smooth and self.ema_weight else "")
        if not found or n_buckets < 2:
            return data
        # wall time is drawn as time since each run's start, so runs started on different days overlay
        offsets = {k: self._time_origin(k, span[0]) if axis == "time" else 0.0 for k, _, _, span in found}
        x_min = min(span[0] - offsets[k] for k, _, _, span in found)
        x_max = max(span[1] - offsets[k] for k, _, _, span in found)
        data.x_range = (x_min, x_max)
        for key, metric, color, _ in found:
            off = offsets[key]
            xs, lo, hi = watcher.downsample(key, metric, axis, n_buckets, x_min + off, x_max + off)
            xs = np.asarray(xs) - off
            if not (panel.smooth and self.ema_weight):
                data.traces.append(Trace(xs, lo, hi, color))
                continue
            cache_key = (key, metric, axis)
            cached = self._smoothed.get(cache_key)
            if cached is None or cached.ema.weight != self.ema_weight:
                cached = self._smoothed[cache_key] = _Smoothed(self.ema_weight)
            smooth = cached.update(lambda start: watcher.tail(key, metric, axis, start))
            sx, slo, shi = (np.asarray(a) for a in smooth.downsample(n_buckets, x_min + off, x_max + off))
            mid = (slo + shi) / 2
            data.traces.append(Trace(xs, lo, hi, color, faint=True))
            data.traces.append(Trace(sx - off, mid, mid, color))
        return data

    def _time_origin(self, key: str, first_x: float) -> float:
        started = self.app.views[key].started_at
        return float(started) if started is not None else first_x

    # ---- actions
    def action_cycle_x(self) -> None:
        self.x_axis = X_AXES[(X_AXES.index(self.x_axis) + 1) % len(X_AXES)]
        self.redraw()

    def action_log_y(self) -> None:
        self.log_y = not self.log_y
        self.redraw()

    def action_ema(self, step: int) -> None:
        i = min(range(len(EMA_WEIGHTS)), key=lambda j: abs(EMA_WEIGHTS[j] - self.ema_weight))
        self.ema_weight = EMA_WEIGHTS[max(0, min(len(EMA_WEIGHTS) - 1, i + step))]
        self.redraw()

    def action_grid(self) -> None:
        self.grid = not self.grid
        self._apply_layout()

    def action_panel(self, index: int) -> None:
        self.current = index
        self._apply_layout()

    def action_next_bucket(self) -> None:
        """Follow the next age group across the marked runs (on the PER-by-age chart)."""
        panel = next(p for p in PANELS if p.buckets)
        keys = self.app.chart_keys()
        labels = self._bucket_labels(panel, keys)
        if labels:
            now = self._bucket(panel, keys)
            self.bucket = labels[(labels.index(now) + 1) % len(labels)]
        self.action_panel(PANELS.index(panel))

    def action_next_more(self) -> None:
        """Draw the next series of the "more" chart (those no other chart draws)."""
        panel = next(p for p in PANELS if p.more)
        keys = self.app.chart_keys()
        names = self._more_names(keys)
        if names:
            now = self._more(keys)
            self.more = names[(names.index(now) + 1) % len(names)] if now in names else names[0]
        self.action_panel(PANELS.index(panel))

    def action_next_panel(self, step: int) -> None:
        self.action_panel((self.current + step) % len(PANELS))
