"""Curriculum phases: nested, stratified fractions of the train split.

Every train utterance gets one seeded random key; inside each cell the
utterances are taken in key order until the phase's fraction of the cell's
hours. A larger fraction takes a longer prefix of the same order, so phase 1
lies inside phase 2, and so on; each phase keeps train's shares per cell.
"""

from __future__ import annotations

import numpy as np

from kidconsole.errors import KidconsoleError


def check_fractions(fractions, name: str = "fractions") -> tuple[float, ...]:
    """The fractions as floats, or an error naming the option ``name``."""
    try:
        out = tuple(float(f) for f in fractions)
    except (TypeError, ValueError) as e:
        raise KidconsoleError(f"{name}: curriculum fractions must be numbers, got {fractions!r}") from e
    if not out or any(not 0 < f <= 1 for f in out) or any(b <= a for a, b in zip(out, out[1:])):
        raise KidconsoleError(f"{name}: curriculum fractions must increase within (0, 1], got {list(fractions)}")
    if out[-1] != 1.0:
        raise KidconsoleError(f"{name}: the last curriculum fraction must be 1 (the whole train split), "
                              f"got {out[-1]:g}")
    return out


def curriculum_phases(rows: np.ndarray, cell: np.ndarray, duration: np.ndarray, fractions: tuple[float, ...],
                      key: np.ndarray) -> list[np.ndarray]:
    """Sorted row indices of each phase; ``key`` holds a random number per table row."""
    if len(rows) == 0:
        return [rows for _ in fractions]
    c = cell[rows]
    order = np.lexsort((key[rows], c))
    rows_o, c, d = rows[order], c[order], duration[rows[order]]
    cum = np.cumsum(d)
    starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
    counts = np.diff(np.r_[starts, len(c)])
    base = np.repeat(cum[starts] - d[starts], counts)
    within = cum - base
    cell_total = np.repeat(within[starts + counts - 1], counts)
    phases = []
    for f in fractions:
        # keep a row when its middle falls inside the fraction: each cell within half an utterance
        keep = np.ones(len(rows_o), dtype=bool) if f >= 1 else within - d / 2 < f * cell_total
        phases.append(np.sort(rows_o[keep]))
    return phases
