"""The base of the screens pushed over another: escape goes back to it."""

from __future__ import annotations

from textual.binding import Binding
from textual.screen import Screen


class PushedScreen(Screen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]


def screen_bindings(cls: type) -> list:
    """A screen's keys as Textual merges them: those of kidconsole's base screens first, then its own."""
    return [b for c in reversed(cls.__mro__) if c.__module__.startswith("kidconsole.")
            for b in c.__dict__.get("BINDINGS", [])]
