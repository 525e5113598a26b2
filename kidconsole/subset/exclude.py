"""``subset build --exclude FILE``: rows to leave out, by id (the suspects ``kidconsole audit`` writes, or any
JSONL whose lines carry an ``id``, or a text file of ids, one a line).

The subset table keeps no ids (kidconsole/subset/table.py reads only what the selection needs), so the
manifest is read once more, line by line, and the excluded rows are found by their byte offsets.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kidconsole.errors import KidconsoleError
from kidconsole.jsonl import bounded_lines

_ID = re.compile(rb'"id": ?"((?:[^"\\\n]|\\.)*)"')
MAX_LINE = 1 << 20  # a line of a suspects file longer than this is not a manifest row


@dataclass
class Excluded:
    file: str
    ids: int = 0                 # distinct ids the file lists
    rows: int = 0                # manifest rows left out
    hours: float = 0.0
    not_found: int = 0           # ids of the file that no manifest row has
    examples: list[str] = field(default_factory=list)


def read_ids(path: str | Path) -> set[str]:
    """The ids a file lists: JSON lines with an ``id`` (a manifest, suspects), else one id a line."""
    p = Path(path)
    ids: set[str] = set()
    try:
        with p.open("rb") as fh:
            for lineno, (_, raw) in enumerate(bounded_lines(fh, MAX_LINE), 1):
                if raw is None:
                    raise KidconsoleError(f"{p}:{lineno}: a line over {MAX_LINE >> 20} MiB: not a list of ids")
                line = raw.strip()
                if not line:
                    continue
                if line.startswith(b"{"):
                    try:
                        d = json.loads(line)
                    except ValueError:
                        raise KidconsoleError(f"{p}:{lineno}: not JSON") from None
                    if not isinstance(d, dict) or not isinstance(d.get("id"), str):
                        raise KidconsoleError(f"{p}:{lineno}: a line without a string id")
                    ids.add(d["id"])
                else:
                    try:
                        ids.add(line.decode("utf-8"))
                    except UnicodeDecodeError:
                        raise KidconsoleError(f"{p}:{lineno}: not UTF-8 text") from None
    except OSError as e:
        raise KidconsoleError(f"{p}: cannot read the ids to exclude: {e.strerror}") from e
    return ids


def excluded_rows(manifest: Path, offsets: np.ndarray, durations: np.ndarray,
                  path: str | Path) -> tuple[np.ndarray, Excluded]:
    """A mask over the table's rows (their line ``offsets`` in ``manifest``): the rows whose id ``path`` lists."""
    ids = read_ids(path)
    info = Excluded(str(path), ids=len(ids))
    hit: list[int] = []
    found: set[str] = set()
    with Path(manifest).open("rb") as fh:
        for pos, raw in bounded_lines(fh, MAX_LINE):
            m = _ID.search(raw) if raw is not None else None  # a giant line is no row the table kept
            if m:
                try:
                    uid = json.loads(b'"' + m.group(1) + b'"')
                except ValueError:
                    uid = None
                if uid in ids:
                    hit.append(pos)
                    found.add(uid)
    mask = np.isin(offsets, np.array(hit, dtype=np.int64))
    info.rows = int(mask.sum())
    info.hours = round(float(durations[mask].sum()) / 3600, 4)
    missing = sorted(ids - found)
    info.not_found = len(missing)
    info.examples = missing[:5]
    return mask, info
