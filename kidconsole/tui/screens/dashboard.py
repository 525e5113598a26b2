"""The home screen: every run as a card, side by side (two at 80 columns, more when wider)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from kidconsole.tui.widgets.run_card import RunCard

CARD_WIDTH = 40  # columns per card: two cards at 80 columns


class DashboardScreen(Screen):
    TITLE = "Runs"
    BINDINGS = [
        Binding("left", "move(-1, 0)", "Move", show=False),
        Binding("right", "move(1, 0)", "Move", show=False),
        Binding("up", "move(0, -1)", "Move", show=False),
        Binding("down", "move(0, 1)", "Move", show=False),
        Binding("enter", "on_run('open_detail')", "Detail"),
        Binding("space", "mark", "Mark"),
        Binding("c", "charts", "Charts"),
        Binding("w", "on_run('open_sweep')", "Sweep"),
        Binding("v", "on_run('open_decodes')", "Decodes"),
        Binding("e", "on_run('open_errors')", "Errors"),
        Binding("n", "launch", "New run"),
        Binding("x", "on_run('confirm_stop')", "Stop"),
        Binding("r", "on_run('confirm_resume')", "Resume"),
        Binding("a", "mark_all", "Mark all/none", show=False),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="cards-scroll"):
            yield Static("", id="empty")
            yield Grid(id="cards")
        yield Footer()

    def on_mount(self) -> None:
        self.runs_changed()

    def on_screen_resume(self) -> None:
        self.runs_changed()

    def on_resize(self) -> None:
        self._layout()

    @property
    def columns(self) -> int:
        return max(1, self.size.width // CARD_WIDTH)

    def _layout(self) -> None:
        grid = self.query_one("#cards", Grid)
        grid.styles.grid_size_columns = self.columns

    def cards(self) -> list[RunCard]:
        return list(self.query(RunCard))

    def runs_changed(self) -> None:
        app = self.app
        # the runs of one sweep side by side, in their grid order
        views = sorted(app.views.values(), key=lambda v: (v.sweep or v.name, v.name, v.key))
        empty = self.query_one("#empty", Static)
        if views:
            empty.display = False
        else:
            roots = ", ".join(app.roots)
            empty.update(f"No runs under {roots} yet.\n\nPress n to launch one, ? for help.")
            empty.display = True
        grid = self.query_one("#cards", Grid)
        cards = self.cards()
        if [c.run_key for c in cards] != [v.key for v in views]:
            focused = self.focused.run_key if isinstance(self.focused, RunCard) else None
            grid.remove_children()
            new = [RunCard(v, app.run_colors[v.name], v.key in app.marked) for v in views]
            grid.mount_all(new)
            self._layout()
            target = next((c for c in new if c.run_key == focused), new[0] if new else None)
            if target is not None:
                self.call_after_refresh(target.focus)
            return
        for card, view in zip(cards, views):
            card.set_view(view, view.key in app.marked)

    # ---- actions
    def selected(self) -> str | None:
        """The focused run's key (the first run when none has focus)."""
        if isinstance(self.focused, RunCard):
            return self.focused.run_key
        cards = self.cards()
        return cards[0].run_key if cards else None

    def action_move(self, dx: int, dy: int) -> None:
        cards = self.cards()
        if not cards:
            return
        i = cards.index(self.focused) if self.focused in cards else 0
        j = i + dx + dy * self.columns
        if 0 <= j < len(cards):
            cards[j].focus()
            cards[j].scroll_visible()

    def action_mark(self) -> None:
        key = self.selected()
        if key is not None:
            self.app.toggle_mark(key)
            self.runs_changed()

    def action_mark_all(self) -> None:
        app = self.app
        app.marked = set() if app.marked >= set(app.views) else set(app.views)
        self.runs_changed()

    def action_charts(self) -> None:
        self.app.open_charts()

    def action_launch(self) -> None:
        self.app.open_launch()

    def action_on_run(self, method: str) -> None:
        """The app's ``method`` (open_detail, confirm_stop ...) on the selected run."""
        if key := self.selected():
            getattr(self.app, method)(key)
