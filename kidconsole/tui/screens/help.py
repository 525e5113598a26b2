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
                  padding=(0, 2, 0, 0), expand=True)
    table.add_column(style="bold", no_wrap=True, min_width=10)
    table.add_column(ratio=1)
    keys_by_description: dict[str, list[str]] = {}
    for b in bindings:
        if not isinstance(b, Binding):
            b = Binding(*b)
        if b.description:
            keys = keys_by_description.setdefault(b.description, [])
            if key_label(b) not in keys:
                keys.append(key_label(b))
    for description, keys in keys_by_description.items():
        table.add_row("/".join(keys), description)
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
