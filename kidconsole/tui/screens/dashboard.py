"""The home screen: every run as a card, side by side (two at 80 columns, more when wider); with many runs,
a filter (``/``), a sort (``o``) and groups by launch config (``g``): kidconsole/tui/arrange.py."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Static

from kidconsole.shown import text
from kidconsole.tui import arrange
from kidconsole.tui.widgets.run_card import RunCard

CARD_WIDTH = 40  # columns per card: two cards at 80 columns


class DashboardScreen(Screen):
    TITLE = "Runs"
    AUTO_FOCUS = "RunCard"  # never the hidden filter box
    BINDINGS = [
        Binding("left", "move(-1, 0)", "Move", show=False, priority=True),
        Binding("right", "move(1, 0)", "Move", show=False, priority=True),
        Binding("up", "move(0, -1)", "Move", show=False, priority=True),
        Binding("down", "move(0, 1)", "Move", show=False, priority=True),
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
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("o", "sort", "Sort"),
        Binding("g", "group", "Group"),
    ]

    def __init__(self):
        super().__init__()
        self.filter_text = ""
        self.terms: list[arrange.Term] = []
        self.sort = arrange.SORTS[0]
        self.grouped = False
        self.configs: dict[str, dict] = {}  # run key -> flattened config (for KEY=VALUE filters)
        self._layout_sig: list = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="filter: name words, state:running, lora.r=16 (enter keeps it, esc clears)",
                    id="filter")
        yield Static("", id="arrange-status", classes="screen-head")
        with VerticalScroll(id="cards-scroll"):
            yield Static("", id="empty")
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
        for grid in self.query(".cards").results(Grid):
            grid.styles.grid_size_columns = self.columns

    def cards(self) -> list[RunCard]:
        return list(self.query(RunCard))

    def runs_changed(self) -> None:
        app = self.app
        groups = arrange.arrange(app.views.values(), self.terms, self.sort, self.grouped, self.configs)
        views = [v for _, vs in groups for v in vs]
        self._show_status(len(views))
        empty = self.query_one("#empty", Static)
        if views:
            empty.display = False
        elif app.views:
            empty.update(text(f"No run matches the filter {self.filter_text!r} ({len(app.views)} runs). / edits it."))
            empty.display = True
        else:
            roots = ", ".join(app.roots)
            empty.update(text(f"No runs under {roots} yet.\n\nPress n to launch one, ? for help.", lines=True))
            empty.display = True
        sig = [(name, [v.key for v in vs]) for name, vs in groups]
        if sig != self._layout_sig:
            self._layout_sig = sig
            self._mount(groups)
            return
        for card, view in zip(self.cards(), views):
            card.set_view(view, view.key in app.marked)

    def _mount(self, groups: list) -> None:
        """One grid of cards per group (a header above each when grouped); focus stays on its run."""
        app = self.app
        focused = self.focused.run_key if isinstance(self.focused, RunCard) else None
        scroll = self.query_one("#cards-scroll", VerticalScroll)
        scroll.query(".cards, .group-head").remove()
        widgets, new = [], []
        for name, vs in groups:
            if name is not None:
                widgets.append(Static(text(f"{name} · {len(vs)} runs"), classes="group-head"))
            cards = [RunCard(v, app.run_colors[v.name], v.key in app.marked) for v in vs]
            new += cards
            widgets.append(Grid(*cards, classes="cards"))
        scroll.mount_all(widgets)
        self._layout()
        target = next((c for c in new if c.run_key == focused), new[0] if new else None)
        typing = isinstance(self.focused, Input) and self.focused.display  # typing a filter keeps its focus
        if target is not None and not typing:
            self.call_after_refresh(target.focus)

    def _show_status(self, shown: int) -> None:
        status = self.query_one("#arrange-status", Static)
        parts = []
        if self.terms:
            parts.append(f"filter {self.filter_text!r}: {shown} of {len(self.app.views)} runs")
        if self.sort != arrange.SORTS[0]:
            parts.append(f"sorted by {self.sort}")
        if self.grouped:
            parts.append("grouped by launch config")
        status.update(text(" · ".join(parts)))
        status.display = bool(parts)

    # ---- actions
    def selected(self) -> str | None:
        """The focused run's key (the first run when none has focus)."""
        if isinstance(self.focused, RunCard):
            return self.focused.run_key
        cards = self.cards()
        return cards[0].run_key if cards else None

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        # the arrows move between cards before the scroll area takes them, but not while typing a filter
        return not (action == "move" and isinstance(self.focused, Input))

    def action_move(self, dx: int, dy: int) -> None:
        cards = self.cards()
        if not cards:
            return
        i = cards.index(self.focused) if self.focused in cards else 0
        target = None
        if dx and 0 <= i + dx < len(cards):
            target = cards[i + dx]
        elif dy:  # the nearest card in the next row up or down (groups make rows of different lengths)
            at = {c: _place(c) for c in cards}
            x, y = at[cards[i]]
            rows = [c for c in cards if (at[c][1] - y) * dy > 0]
            if rows:
                ny = min((at[c][1] for c in rows), key=lambda v: abs(v - y))
                target = min((c for c in rows if at[c][1] == ny), key=lambda c: abs(at[c][0] - x))
        if target is not None:
            target.focus()
            target.scroll_visible()

    def action_mark(self) -> None:
        key = self.selected()
        if key is not None:
            self.app.toggle_mark(key)
            self.runs_changed()

    def action_mark_all(self) -> None:
        app = self.app
        app.marked = set() if app.marked >= set(app.views) else set(app.views)
        self.runs_changed()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.value = self.filter_text
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        try:
            self._apply_filter(event.value)
        except arrange.FilterError:
            pass  # half typed: the filter shown stays until the text parses

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            self._apply_filter(event.value)
        except arrange.FilterError as e:
            self.app.notify(f"filter: {e}", severity="error")
            return
        self._close_filter()

    def on_key(self, event) -> None:
        box = self.query_one("#filter", Input)
        if event.key == "escape" and box.has_focus:
            event.stop()
            self._apply_filter("")
            self._close_filter()

    def _close_filter(self) -> None:
        self.query_one("#filter", Input).display = False
        cards = self.cards()
        if cards:
            cards[0].focus()

    def _apply_filter(self, text: str) -> None:
        terms = arrange.parse_filter(text)
        self.filter_text, self.terms = text.strip(), terms
        if arrange.needs_configs(terms) and set(self.app.views) - set(self.configs):
            self.load_configs()
        self.runs_changed()

    @work(thread=True, exclusive=True, group="dashboard-configs")
    def load_configs(self) -> None:
        from kidconsole.config_files import flatten

        app = self.app
        loaded = {k: flatten(app.watcher.config(k)) for k in list(app.views) if k not in self.configs}
        app.call_from_thread(self._configs_loaded, loaded)

    def _configs_loaded(self, loaded: dict) -> None:
        self.configs.update(loaded)
        self.runs_changed()

    def action_sort(self) -> None:
        self.sort = arrange.SORTS[(arrange.SORTS.index(self.sort) + 1) % len(arrange.SORTS)]
        self.runs_changed()

    def action_group(self) -> None:
        self.grouped = not self.grouped
        self.runs_changed()

    def action_charts(self) -> None:
        self.app.open_charts()

    def action_launch(self) -> None:
        self.app.open_launch()

    def action_on_run(self, method: str) -> None:
        """The app's ``method`` (open_detail, confirm_stop ...) on the selected run."""
        if key := self.selected():
            getattr(self.app, method)(key)


def _place(card: RunCard) -> tuple[int, int]:
    """A card's (x, y) in the scrolled area, visible or not: its grid's place plus its place in the grid."""
    grid, own = card.parent.virtual_region, card.virtual_region
    return grid.x + own.x, grid.y + own.y
