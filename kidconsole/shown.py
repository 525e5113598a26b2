"""Strings from disk shown as text: never as Rich or Textual markup, never as terminal control sequences.

A run's name, its directory's name, an error, a log line, a decode, a config value: anyone who can
write a run directory writes them. An OSC sequence among them sets the terminal's title, a CSI clears
the screen, ``[reverse]`` restyles what follows. Every string read from disk passes through here on its
way to the console or a terminal: ``visible`` makes each control character a visible escape (``\\x1b``,
``\\u202e``), and ``text`` wraps the result in a ``rich.text.Text``, which Rich and Textual never parse for
markup. A string that reaches a widget as ``str`` is parsed as markup (a Static's text, a DataTable's
cell): such a string goes through ``markup``, which escapes it, or is passed as ``text``.
"""

from __future__ import annotations

import re

from rich.text import Text

# C0 and C1 controls and DEL; line and paragraph separators; the bidirectional overrides and isolates,
# which reorder what the eye reads ("Trojan source")
_OTHERS = "\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069"
_CONTROL = re.compile(f"[\x00-\x1f{_OTHERS}]")
_CONTROL_BUT_LINES = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f{_OTHERS}]")  # keeps \t \n \r


def _escape(m: re.Match) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def visible(value: object, *, lines: bool = False) -> str:
    """``value`` as a string whose control characters are shown as escapes (``\\x1b``); ``lines`` keeps
    newlines, tabs and carriage returns (a log with its progress bars, a traceback), else they are escaped
    too (a name, a cell)."""
    s = value if isinstance(value, str) else str(value)
    return (_CONTROL_BUT_LINES if lines else _CONTROL).sub(_escape, s)


def text(value: object, style: str = "", *, lines: bool = False) -> Text:
    """``visible(value)`` as a ``Text`` in ``style``: shown as written, never read as markup."""
    return Text(visible(value, lines=lines), style=style)


def markup(value: object, *, lines: bool = False) -> str:
    """``visible(value)`` escaped for a Rich markup string (``console.print(f"[bold]{markup(name)}[/]")``):
    its brackets print as written."""
    from rich.markup import escape

    return escape(visible(value, lines=lines))
