"""A stable colour per run, the same on every screen and every start.

The colour comes from a hash of the run's name, so a run keeps its colour
across restarts; when two live runs would share one, the later one (by name)
takes the next free colour of the palette.
"""

from __future__ import annotations

import zlib

from kidconsole.palette import RUN_COLORS


def preferred_color(name: str) -> int:
    return zlib.crc32(name.encode("utf-8")) % len(RUN_COLORS)


class ColorBook:
    """Hands out palette colours to run names; once given, a colour never changes."""

    def __init__(self, palette: tuple[str, ...] = RUN_COLORS):
        self.palette = palette
        self._given: dict[str, str] = {}

    def assign(self, names: list[str]) -> None:
        """Give colours to new names, in sorted order so the result does not depend on discovery order."""
        for name in sorted(set(names) - self._given.keys()):
            used = set(self._given.values())
            start = preferred_color(name)
            for i in range(len(self.palette)):
                color = self.palette[(start + i) % len(self.palette)]
                if color not in used:
                    break
            else:  # more runs than colours: share the preferred one
                color = self.palette[start]
            self._given[name] = color

    def __getitem__(self, name: str) -> str:
        if name not in self._given:
            self.assign([name])
        return self._given[name]
