"""One run in depth: config, config diff against another run, log tail, checkpoints, warnings, evaluation cost."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Header, Log, Static, TabbedContent, TabPane

from kidconsole import palette, rundir
from kidconsole.config_files import config_diff, show_value
from kidconsole.runs import evalcost
from kidconsole.runs.augment_counts import counts_line, settings_lines
from kidconsole.shown import markup, text, visible
from kidconsole.tui.widgets.chart import Chart, ChartData, Trace, plot_columns
from kidconsole.tui.widgets.exports_panel import export_running, exports_panel, read_exports_state
from kidconsole.tui.widgets.run_card import eval_cost_lines
from kidconsole.tui.widgets.system_panel import system_panel
from kidconsole.tui.screens.pushed import PushedScreen

TABS = ("config", "diff", "log", "checkpoints", "warnings", "cost", "system", "exports")
LOG_LINES = 300
EXPORTS_EVERY = 2.0  # seconds between reads of RUN/exports while the screen is open


def shown_path(path: Path) -> str:
    """The run's folder relative to the working directory when it is below it (shorter over SSH)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def augment_panel(cfg: dict, counts: dict[str, int]) -> Text:
    """The run's augmentation: each phase's settings, then what was applied so far (shown as text: the config's
    paths and names are the user's)."""
    if not cfg:
        return Text("")
    lines = ["Augmentation", *settings_lines(cfg), f"applied so far (utterances): {counts_line(counts)}", ""]
    return text("\n".join(lines), lines=True)


class RunDetailScreen(PushedScreen):
    TITLE = "Run detail"
    BINDINGS = [
        *[Binding(str(i + 1), f"tab('{t}')", t.capitalize(), show=False) for i, t in enumerate(TABS)],
        Binding("d", "diff_next", "Diff with"),
        Binding("v", "on_run('open_decodes')", "Decodes"),
        Binding("e", "on_run('open_errors')", "Errors"),
        Binding("x", "on_run('confirm_stop')", "Stop"),
        Binding("r", "on_run('confirm_resume')", "Resume"),
        Binding("a", "on_run('confirm_average')", "Average best"),
        Binding("o", "export", "Export ONNX"),
    ]

    def __init__(self, key: str):
        super().__init__()
        self.key = key
        self.other: str | None = None
        self.configs: dict[str, dict] = {}
        self._loaded_revision: int | None = None
        self.exports: dict | None = None  # the last read of RUN/exports (exports_panel.read_exports_state)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="detail-status", classes="screen-head")
        with TabbedContent(id="detail-tabs"):
            with TabPane("1 Config", id="config"):
                with VerticalScroll():
                    yield Static("", id="augment-text")
                    yield Static("", id="config-text")
            with TabPane("2 Diff", id="diff"):
                yield Static("", id="diff-head")
                yield DataTable(id="diff-table", zebra_stripes=True, cursor_type="row")
            with TabPane("3 Log", id="log"):
                yield Log(id="log-text", max_lines=LOG_LINES * 4)
            with TabPane("4 Checkpoints", id="checkpoints"):
                yield DataTable(id="ckpt-table", zebra_stripes=True, cursor_type="row")
            with TabPane("5 Warnings", id="warnings"):
                yield DataTable(id="warn-table", zebra_stripes=True, cursor_type="row")
            with TabPane("6 Eval cost", id="cost"):
                yield Static("", id="cost-head")
                yield Chart("evaluation share of wall time", id="cost-chart")
            with TabPane("7 System", id="system"):
                with VerticalScroll():
                    yield Static("", id="system-text")
            with TabPane("8 Exports", id="exports"):
                with VerticalScroll():
                    yield Static("", id="exports-text")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#diff-table", DataTable).add_columns("key", "this run", "other run")
        self.query_one("#ckpt-table", DataTable).add_columns("checkpoint", "step", "complete", "best")
        self.query_one("#warn-table", DataTable).add_columns("step", "what", "message")
        others = [k for k in self.app.chart_keys() if k != self.key] or [k for k in self.app.views if k != self.key]
        self.other = others[0] if others else None
        self.runs_changed()
        self.set_interval(EXPORTS_EVERY, self.load_exports)  # an export job writes beside the run, not in it

    def on_screen_resume(self) -> None:
        self.runs_changed()

    def runs_changed(self) -> None:
        view = self.app.view(self.key)
        if view is None:
            self.query_one("#detail-status", Static).update(text(f"{self.key}: gone from the runs root"))
            return
        self.query_one("#detail-status", Static).update(
            Text.assemble(text(view.name, f"bold {self.app.run_colors[view.name]}"),
                          text(f" · {view.state} · {shown_path(view.path)}")))
        self.query_one("#system-text", Static).update(system_panel(view))
        if view.revision != self._loaded_revision:
            self._loaded_revision = view.revision
            self.load()
            self.draw_cost()
            self.load_exports()

    def on_resize(self) -> None:
        self.call_after_refresh(self.draw_cost)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "cost":
            self.call_after_refresh(self.draw_cost)

    def draw_cost(self) -> None:
        """The evaluation share over steps, with the warning threshold as a line, and the newest figures."""
        view = self.app.view(self.key)
        chart = self.query_one("#cost-chart", Chart)
        if view is None or not chart.size.width:
            return
        threshold = getattr(self.app, "eval_share_warn", evalcost.EVAL_SHARE_WARN)
        self.query_one("#cost-head", Static).update(
            Text("\n").join(eval_cost_lines(view, max(40, chart.size.width), threshold)))
        color = self.app.run_colors[view.name]
        data = ChartData(legend=[(visible(view.name), color), (f"threshold {threshold:.0%}", palette.WARNING)])
        watcher, metric = self.app.watcher, "eval/eval_share"
        span = watcher.span(self.key, metric, "step")
        n = plot_columns(chart.size.width)
        if span is not None and n >= 2:
            data.x_range = span
            xs, lo, hi = watcher.downsample(self.key, metric, "step", n, *span)
            data.traces.append(Trace(np.asarray(xs), np.asarray(lo), np.asarray(hi), color))
            edge = np.asarray(span, dtype=float)
            data.traces.append(Trace(edge, np.full(2, threshold), np.full(2, threshold), palette.WARNING, faint=True))
        chart.update_data(data)

    @work(thread=True, exclusive=True, group="detail-exports")
    def load_exports(self) -> None:
        view = self.app.view(self.key)
        if view is not None:
            self.app.call_from_thread(self._fill_exports, read_exports_state(view.path))

    def _fill_exports(self, data: dict) -> None:
        self.exports = data
        view = self.app.view(self.key)
        self.query_one("#exports-text", Static).update(exports_panel(data, view.name if view else self.key))

    @work(thread=True, exclusive=True, group="detail")
    def load(self) -> None:
        """Everything that reads the disk, off the UI thread."""
        app, watcher = self.app, self.app.watcher
        data = {"configs": {key: watcher.config(key) for key in {self.key, self.other} - {None}},
                "log": watcher.log_tail(self.key, LOG_LINES), "checkpoints": watcher.checkpoints(self.key),
                "warnings": watcher.warnings(self.key, LOG_LINES)}
        app.call_from_thread(self._fill, data)

    def _fill(self, data: dict) -> None:
        self.configs.update(data["configs"])
        cfg = self.configs.get(self.key, {})
        self.query_one("#config-text", Static).update(
            text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True) if cfg else f"(no readable {rundir.CONFIG})",
                 lines=True))
        view = self.app.view(self.key)
        self.query_one("#augment-text", Static).update(augment_panel(cfg, view.augmented if view else {}))
        self._fill_diff()
        log = self.query_one("#log-text", Log)
        log.clear()
        log.write_lines([visible(line) for line in data["log"]] or ["(stdout.log is empty)"])
        ckpt = self.query_one("#ckpt-table", DataTable)
        ckpt.clear()
        for c in data["checkpoints"]:
            ckpt.add_row(markup(c["name"]), f"{c['step']:,}" if c.get("step") is not None else "-",
                         "yes" if c.get("complete") else Text("partial", style=palette.PARTIAL),
                         Text("best", style=palette.BEST) if c.get("best") else "")
        warn = self.query_one("#warn-table", DataTable)
        warn.clear()
        for w in reversed(data["warnings"]):
            warn.add_row(markup(w.get("step", "")), markup(w.get("what", "")), markup(w.get("message", "")))

    def _fill_diff(self) -> None:
        head = self.query_one("#diff-head", Static)
        table = self.query_one("#diff-table", DataTable)
        table.clear()
        views = self.app.views
        if self.other is None or self.other not in views:
            head.update("No other run to compare with.")
            return
        me, other = views[self.key].name, views[self.other].name
        a, b = self.configs.get(self.key, {}), self.configs.get(self.other, {})
        diff = config_diff(a, b)
        head.update(Text.assemble(f"{rundir.CONFIG}: ", text(me, f"bold {self.app.run_colors[me]}"), " vs ",
                                  text(other, f"bold {self.app.run_colors[other]}"),
                                  f" · {len(diff)} changed keys (d: compare with the next run)"))
        for key, va, vb in diff:
            table.add_row(markup(key), markup(show_value(va)), markup(show_value(vb)))  # a cell's str is markup

    # ---- actions
    def action_tab(self, tab: str) -> None:
        self.query_one("#detail-tabs", TabbedContent).active = tab

    def action_diff_next(self) -> None:
        others = sorted((k for k in self.app.views if k != self.key), key=lambda k: (self.app.views[k].name, k))
        if not others:
            return
        i = others.index(self.other) + 1 if self.other in others else 0
        self.other = others[i % len(others)]
        self.action_tab("diff")
        self._loaded_revision = None
        self.runs_changed()

    def action_export(self) -> None:
        self.action_tab("exports")
        self.app.start_export(self.key, running=bool(self.exports) and export_running(self.exports))
        self.load_exports()

    def action_on_run(self, method: str) -> None:
        """The app's ``method`` (open_decodes, confirm_stop ...) on this run."""
        getattr(self.app, method)(self.key)
