"""Live charts: train loss (raw faint, debiased EMA strong), eval loss, PER, CER, LR.

The runs overlaid are the marked ones (all when none is marked), each in its
colour, on shared axes. Every chart downsamples each series to its own width
(one min/max bucket per dot column), so a run of 332,000 steps draws as fast
as one of 300.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from kidconsole.runs.series import Series
from kidconsole.tui.smoothing import DebiasedEma
from kidconsole.tui.watcher import SeriesTail
from kidconsole.tui.widgets.chart import Chart, ChartData, Trace, plot_columns

X_AXES = ("step", "samples", "time")
EMA_WEIGHTS = (0.0, 0.6, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)


@dataclass(frozen=True)
class Panel:
    metric: str
    title: str
    smooth: bool = False


PANELS = (
    Panel("train/loss", "train loss", smooth=True),
    Panel("eval/loss", "eval loss"),
    Panel("eval/per", "PER"),
    Panel("eval/cer", "CER"),
    Panel("train/lr", "learning rate"),
)


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


class ChartsScreen(Screen):
    TITLE = "Charts"
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("x", "cycle_x", "X axis"),
        Binding("y", "log_y", "Log y"),
        Binding("plus,equals_sign", "ema(1)", "EMA+", key_display="+"),
        Binding("minus", "ema(-1)", "EMA-", key_display="-"),
        Binding("g", "grid", "Grid"),
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
        return (f"{PANELS[self.current].title} · x: {self.x_axis} · {ema} · log-y {'on' if self.log_y else 'off'}"
                f" · {len(keys)} {marked}")

    def redraw(self, force: bool = False) -> None:
        app = self.app
        keys = app.chart_keys()
        self.query_one("#chart-status", Static).update(self._status(keys))
        revisions = tuple((k, app.views[k].revision) for k in keys)
        for i, chart in enumerate(self.query(Chart)):
            if not chart.display or not chart.size.width:
                continue
            stamp = (revisions, self.x_axis, self.log_y, self.ema_weight, chart.size)
            if not force and self._drawn.get(i) == stamp:
                continue
            self._drawn[i] = stamp
            chart.update_data(self.chart_data(PANELS[i], keys, plot_columns(chart.size.width)))

    def chart_data(self, panel: Panel, keys: list[str], n_buckets: int) -> ChartData:
        app, watcher, axis = self.app, self.app.watcher, self.x_axis
        found = [(k, span) for k in keys if (span := watcher.span(k, panel.metric, axis)) is not None]
        legend = [(app.views[k].name, app.run_colors[app.views[k].name]) for k in keys]
        data = ChartData(legend=legend, x_kind=axis, log_y=self.log_y,
                         note=f"EMA {self.ema_weight:g}" if panel.smooth and self.ema_weight else "")
        if not found or n_buckets < 2:
            return data
        # wall time is drawn as time since each run's start, so runs started on different days overlay
        offsets = {k: self._time_origin(k, span[0]) if axis == "time" else 0.0 for k, span in found}
        x_min = min(span[0] - offsets[k] for k, span in found)
        x_max = max(span[1] - offsets[k] for k, span in found)
        data.x_range = (x_min, x_max)
        for key, _ in found:
            color = app.run_colors[app.views[key].name]
            off = offsets[key]
            xs, lo, hi = watcher.downsample(key, panel.metric, axis, n_buckets, x_min + off, x_max + off)
            xs = np.asarray(xs) - off
            if not (panel.smooth and self.ema_weight):
                data.traces.append(Trace(xs, lo, hi, color))
                continue
            cache_key = (key, panel.metric, axis)
            cached = self._smoothed.get(cache_key)
            if cached is None or cached.ema.weight != self.ema_weight:
                cached = self._smoothed[cache_key] = _Smoothed(self.ema_weight)
            smooth = cached.update(lambda start: watcher.tail(key, panel.metric, axis, start))
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

    def action_next_panel(self, step: int) -> None:
        self.action_panel((self.current + step) % len(PANELS))
