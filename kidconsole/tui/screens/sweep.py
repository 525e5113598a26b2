"""One sweep as a table: a row per run, its varied keys as columns, sortable, best PER first."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Static

from kidconsole import palette
from kidconsole.shown import markup, text
from kidconsole.tui.watcher import RunView
from kidconsole.tui.screens.pushed import PushedScreen

PER = "eval/per"


def varied_keys(views: list[RunView]) -> list[str]:
    """The sweep's keys, in the order its points give them."""
    keys: list[str] = []
    for v in views:
        for assignment in v.sweep_point:
            k = assignment.partition("=")[0]
            if k not in keys:
                keys.append(k)
    return keys


def point_value(view: RunView, key: str) -> str:
    return next((a.partition("=")[2] for a in view.sweep_point if a.partition("=")[0] == key), "-")


def best_per(view: RunView) -> float | None:
    best = view.best.get(PER)
    return best[0] if best else None


def _number(text: str) -> tuple[int, float | str]:
    try:
        return (0, float(text))
    except ValueError:
        return (1, text)


class SweepScreen(PushedScreen):
    TITLE = "Sweep"
    BINDINGS = [
        Binding("p", "sort('per')", "Sort by best PER"),
        Binding("k", "sort('next')", "Sort by next key"),
        Binding("enter", "detail", "Detail"),
    ]

    def __init__(self, sweep: str):
        super().__init__()
        self.sweep = sweep
        self.sort_by = "per"  # "per", "run" or a varied key
        self._shown: tuple | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="sweep-head", classes="screen-head")
        yield DataTable(id="sweep-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
        self.runs_changed()

    def on_screen_resume(self) -> None:
        self.runs_changed()

    def views(self) -> list[RunView]:
        return [v for v in self.app.views.values() if v.sweep == self.sweep]

    def rows(self) -> list[RunView]:
        """The sweep's runs in the current order: best PER first (runs without one last), or by a key."""
        views = self.views()
        if self.sort_by == "per":
            return sorted(views, key=lambda v: (best_per(v) is None, best_per(v) or 0.0, v.name))
        if self.sort_by == "run":
            return sorted(views, key=lambda v: v.name)
        return sorted(views, key=lambda v: (_number(point_value(v, self.sort_by)), best_per(v) or 1.0, v.name))

    def runs_changed(self) -> None:
        rows = self.rows()
        keys = varied_keys(rows)
        shown = (self.sort_by, tuple(keys), tuple((v.key, v.state, v.step, best_per(v), v.queue_position) for v in rows))
        if shown == self._shown:
            return
        self._shown = shown
        table = self.query_one(DataTable)
        selected = self._selected_key()
        table.clear(columns=True)
        for col in ["run", *keys, "state", "step", "PER", "best PER", "at step"]:
            sorted_by = col in (self.sort_by, {"per": "best PER"}.get(self.sort_by))
            table.add_column(markup(("▲ " if sorted_by else "") + col), key=col)
        for v in rows:
            per = v.best.get(PER)
            last = v.last.get(PER)
            state = f"queued #{v.queue_position}" if v.queue_position else v.state
            table.add_row(
                markup(v.name), *(markup(point_value(v, k)) for k in keys), text(state, palette.state_style(v.state)),
                f"{v.step:,}" if v.step is not None else "-",
                f"{last:.2%}" if last is not None else "-",
                Text(f"{per[0]:.2%}", style=palette.BEST if v is rows[0] else "") if per else "-",
                f"{per[1]:,}" if per and per[1] is not None else "-",
                key=v.key,
            )
        if selected in {v.key for v in rows}:
            table.move_cursor(row=[v.key for v in rows].index(selected))
        order = {"per": "best PER", "run": "run name"}.get(self.sort_by, self.sort_by)
        done = sum(1 for v in rows if best_per(v) is not None)
        self.query_one("#sweep-head", Static).update(
            text(f"sweep {self.sweep}: {len(rows)} runs, {done} with an evaluation; sorted by {order} "
                 f"(p: best PER, k: next key)"))

    def _selected_key(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def action_sort(self, by: str) -> None:
        if by == "next":
            cycle = ["per", *varied_keys(self.views()), "run"]
            by = cycle[(cycle.index(self.sort_by) + 1) % len(cycle)] if self.sort_by in cycle else "per"
        self.sort_by = by
        self.runs_changed()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        col = str(event.column_key.value)
        self.action_sort({"best PER": "per"}.get(col, col if col in ("run", *varied_keys(self.views())) else "per"))

    def action_detail(self) -> None:
        if key := self._selected_key():
            self.app.open_detail(key)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.app.open_detail(str(event.row_key.value))
