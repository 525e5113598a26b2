"""A run's forced alignments (``RUN/alignments.jsonl``, ``kidconsole align``), found by utterance id.

The file can hold millions of lines: it is indexed once (each id's byte offset, read in blocks, lines over
``MAX_LINE`` skipped) and a line is read and parsed only when its utterance is shown. Light: no torch.
"""

from __future__ import annotations

import json
from pathlib import Path

from kidconsole import rundir
from kidconsole.bounded import open_regular
from kidconsole.jsonl import bounded_lines

MAX_LINE = 1 << 20   # an alignment of a 20 s utterance is a few kilobytes


def alignments_path(source: str | Path) -> Path:
    """Where a run's alignments are: beside its predictions (``source``: the run directory or its
    predictions file)."""
    p = Path(source)
    return (p if p.is_dir() else p.parent) / rundir.ALIGNMENTS


class AlignmentIndex:
    """Byte offsets of ``path``'s lines by id; ``get(id)`` parses one."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.offsets: dict[str, tuple[int, int]] = {}
        with open_regular(self.path) as fh:  # a FIFO would block the reader
            for pos, raw in bounded_lines(fh, MAX_LINE):
                if raw is not None and raw.startswith(b'{"id":'):  # not the header, not a giant
                    try:
                        uid = json.loads(raw).get("id")
                    except ValueError:
                        uid = None
                    if isinstance(uid, str):
                        self.offsets[uid] = (pos, len(raw))

    def get(self, uid: str) -> dict | None:
        where = self.offsets.get(uid)
        if where is None:
            return None
        with open_regular(self.path) as fh:  # a FIFO would block the reader
            fh.seek(where[0])
            raw = fh.read(where[1])
        try:
            d = json.loads(raw)
        except ValueError:
            return None
        return d if isinstance(d, dict) and isinstance(d.get("phones"), list) else None


def load_index(source: str | Path) -> AlignmentIndex | None:
    path = alignments_path(source)
    try:
        return AlignmentIndex(path) if path.is_file() else None
    except OSError:
        return None
