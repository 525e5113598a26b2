"""Sample decodes of one run: reference vs hypothesis at each evaluation, aligned, browsable."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Header, Static

from kidconsole.shown import text
from kidconsole.tui.widgets.aligned_decode import AlignedDecode
from kidconsole.tui.screens.pushed import PushedScreen


def group_by_step(decodes: list[dict]) -> list[tuple[int, list[dict]]]:
    """Decodes grouped per evaluation step, oldest first (a resumed run's redone step replaces the old one)."""
    by_step: dict[int, list[dict]] = {}
    for d in decodes:
        step = d.get("step")
        if isinstance(step, int):
            by_step.setdefault(step, []).append(d)
    return sorted(by_step.items())


class DecodesScreen(PushedScreen):
    TITLE = "Decodes"
    BINDINGS = [
        Binding("left,left_square_bracket", "browse(-1)", "Older eval", key_display="←/["),
        Binding("right,right_square_bracket", "browse(1)", "Newer eval", key_display="→/]"),
        Binding("home", "jump(0)", "Oldest"),
        Binding("end", "jump(-1)", "Latest"),
    ]

    def __init__(self, key: str):
        super().__init__()
        self.key = key
        self.groups: list[tuple[int, list[dict]]] = []
        self.index: int | None = None  # None: follow the latest evaluation
        self._loaded_revision: int | None = None
        self._shown: tuple | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="decode-status", classes="screen-head")
        yield VerticalScroll(id="decodes")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#decodes").focus()
        self.runs_changed()

    def on_screen_resume(self) -> None:
        self.runs_changed()

    def runs_changed(self) -> None:
        view = self.app.view(self.key)
        if view is not None and view.revision != self._loaded_revision:
            self._loaded_revision = view.revision
            self.load()
        elif view is None:
            self.show()

    @work(thread=True, exclusive=True, group="decodes")
    def load(self) -> None:
        groups = group_by_step(self.app.watcher.decodes(self.key))
        self.app.call_from_thread(self._loaded, groups)

    def _loaded(self, groups: list[tuple[int, list[dict]]]) -> None:
        self.groups = groups
        self.show()

    def show(self) -> None:
        view = self.app.view(self.key)
        name = view.name if view else self.key
        status = self.query_one("#decode-status", Static)
        box = self.query_one("#decodes", VerticalScroll)
        if not self.groups:
            status.update(text(f"{name} · no decodes yet (written at each evaluation)"))
            box.remove_children()
            self._shown = None
            return
        i = len(self.groups) - 1 if self.index is None else min(self.index, len(self.groups) - 1)
        step, items = self.groups[i]
        status.update(text(f"{name} · evaluation at step {step:,} ({i + 1}/{len(self.groups)}) · "
                           f"{len(items)} decodes"))
        shown = (step, tuple((d.get("id"), d.get("ref"), d.get("hyp")) for d in items))
        if shown == self._shown:
            return
        self._shown = shown
        box.remove_children()
        box.mount_all([AlignedDecode(str(d.get("id", "?")), d.get("ref") or "", d.get("hyp") or "")
                       for d in items])
        box.scroll_home(animate=False)

    def action_browse(self, step: int) -> None:
        if not self.groups:
            return
        current = len(self.groups) - 1 if self.index is None else self.index
        new = max(0, min(len(self.groups) - 1, current + step))
        self.index = None if new == len(self.groups) - 1 else new
        self.show()

    def action_jump(self, where: int) -> None:
        self.index = None if where < 0 else 0
        self.show()
