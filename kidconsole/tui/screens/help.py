"""Every key of every screen, generated from the bindings themselves so it never drifts."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from kidconsole.tui.screens.pushed import screen_bindings


def key_label(binding: Binding) -> str:
    if binding.key_display:
        return binding.key_display
    names = {"question_mark": "?", "space": "space", "escape": "esc", "plus": "+", "minus": "-",
             "left": "←", "right": "→", "up": "↑", "down": "↓",
             "left_square_bracket": "[", "right_square_bracket": "]"}
    return "/".join(names.get(k, k) for k in binding.key.split(","))


def bindings_table(title: str, bindings) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", show_header=False, box=None,
                  padding=(0, 2, 0, 0), expand=True)
    table.add_column(style="bold", no_wrap=True, min_width=10)
    table.add_column(ratio=1)
    for description, keys in _keys_by_description(bindings):
        table.add_row(keys, description)
    return table


def _keys_by_description(bindings) -> list[tuple[str, str]]:
    """``(description, "key/key")``: bindings that share a description share a line."""
    keys_by_description: dict[str, list[str]] = {}
    for b in bindings:
        if not isinstance(b, Binding):
            b = Binding(*b)
        if b.description:
            keys = keys_by_description.setdefault(b.description, [])
            if key_label(b) not in keys:
                keys.append(key_label(b))
    return [(description, "/".join(keys)) for description, keys in keys_by_description.items()]


def screen_title(cls: type) -> str:
    return getattr(cls, "TITLE", None) or cls.__name__


def help_sections(current: type, everywhere) -> list[tuple[str, list]]:
    """The current screen's keys first, then the keys that work everywhere, then every other screen's."""
    from kidconsole.tui.screens import screen_classes

    sections = [(f"This screen ({screen_title(current)})", screen_bindings(current)), ("Everywhere", everywhere)]
    return sections + [(screen_title(cls), screen_bindings(cls)) for cls in screen_classes() if cls is not current]


def keys_markdown(everywhere) -> str:
    """The table of docs/console.md: every screen's keys, from the same bindings as the help."""
    from kidconsole.tui.screens import screen_classes

    def cell(bindings) -> str:
        return " · ".join(f"`{keys}` {description}" for description, keys in _keys_by_description(bindings))

    rows = [("everywhere", everywhere)] + [(screen_title(cls), screen_bindings(cls)) for cls in screen_classes()]
    return "\n".join(["| screen | keys |", "|---|---|"] + [f"| {title} | {cell(b)} |" for title, b in rows])


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


if __name__ == "__main__":  # prints the keys table of docs/console.md
    from kidconsole.tui.app import KidConsole

    print(keys_markdown(KidConsole.BINDINGS))
