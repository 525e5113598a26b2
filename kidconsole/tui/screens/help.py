"""Every key of every screen, generated from the bindings themselves so it never drifts."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


def key_label(binding: Binding) -> str:
    if binding.key_display:
        return binding.key_display
    names = {"question_mark": "?", "space": "space", "escape": "esc", "plus": "+", "minus": "-",
             "left_square_bracket": "[", "right_square_bracket": "]"}
    return "/".join(names.get(k, k) for k in binding.key.split(","))


def bindings_table(title: str, bindings) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", show_header=False, box=None,
                  padding=(0, 2, 0, 0))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    seen = set()
    for b in bindings:
        if not isinstance(b, Binding):
            b = Binding(*b)
        label = key_label(b)
        if b.description and (label, b.description) not in seen:
            seen.add((label, b.description))
            table.add_row(label, b.description)
    return table


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 76; max-width: 100%; height: 90%; border: thick $accent; background: $surface; padding: 0 1; }
    """

    def __init__(self, sections: list[tuple[str, list]]):
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Text("Keys (esc closes; mouse optional)", style="bold"))
            for title, bindings in self.sections:
                yield Static(bindings_table(title, bindings))
