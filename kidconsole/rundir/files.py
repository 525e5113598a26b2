"""Writing and reading the run directory's files: JSONL appended a line at a time, whole files
replaced atomically, status.json merged under a lock.

Every write goes through a record (records.py): an unknown key or a wrong type fails in the writer.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

from kidconsole.bounded import read_capped
from kidconsole.rundir.names import STATUS, STATUS_LOCK
from kidconsole.rundir.records import Record, Status, event_dict


MAX_STATUS_BYTES = 1 << 20  # a status is a few kB; a larger file (or not a regular file) reads as unreadable
FILE_MODE = 0o644  # the widest a run directory's file is created with, whatever the umask
_WRITES = itertools.count()  # a temp name per write: two threads replacing one file never share a temp file


def private_opener(path, flags: int) -> int:
    """``open(..., opener=private_opener)``: a new file writable by its owner only (the umask can narrow it)."""
    return os.open(path, flags, FILE_MODE)


@contextmanager
def atomic_writer(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """A file that replaces ``path`` only once it is whole and on disk (temp file, fsync, rename);
    on an error the temp file is removed and ``path`` is left as it was. ``mode``: "w" or "wb"."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{next(_WRITES)}.{os.getpid()}.tmp")  # remove_temp_files knows this name
    try:
        with open(tmp, mode, opener=private_opener, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_temp_files(folder: str | Path, pid: int | None = None) -> list[Path]:
    """Remove the temp files ``atomic_writer`` of process ``pid`` (this one) left in ``folder``
    (a write cut short: a full disk, a kill between open and cleanup); returns them."""
    found = list(Path(folder).glob(f".*.{os.getpid() if pid is None else pid}.tmp"))
    for tmp in found:
        tmp.unlink(missing_ok=True)
    return found


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_writer(path) as fh:
        fh.write(text)


def _line(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


class JsonlWriter:
    """Append-only JSONL of one record type, one object a line, flushed per line."""

    def __init__(self, path: str | Path, record: type[Record]):
        self.path = Path(path)
        self.record = record
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("a", encoding="utf-8")

    def write(self, row: dict) -> None:
        self._fh.write(_line(self.record(**row).to_dict()) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def write_rows(path: str | Path, record: type[Record], rows: list[dict]) -> None:
    """A whole JSONL file of ``record`` rows, replaced atomically (predictions.jsonl)."""
    lines = [_line(record(**r).to_dict()) + "\n" for r in rows]  # checked before the old file is touched
    with atomic_writer(path) as fh:
        fh.writelines(lines)


class EventWriter:
    """events.jsonl: every event carries its time ``t`` (unix seconds) and ``kind``, then its record's fields."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("a", encoding="utf-8")

    def emit(self, kind: str, *, t: float | None = None, **fields: Any) -> None:
        """One event of ``kind`` (``EV_*``) with its record's fields; ``t`` defaults to now (a recording sets it)."""
        t = round(time.time(), 3) if t is None else t
        self._fh.write(_line(event_dict(kind, t, fields)) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


@contextmanager
def _status_lock(run_dir: Path):
    # launcher, supervisor, trainer and `run stop` all update status.json: serialise them
    with open(run_dir / STATUS_LOCK, "a", opener=private_opener) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read_status(run_dir: str | Path, *, file: str = STATUS) -> dict:
    """status.json as a dict of its documented keys, each of its type ({} when absent or unreadable;
    a key of the wrong type reads as absent; mid-rename never shows: writes are atomic).
    ``file``: another file of the same record (a node's own, ``node_status_name``)."""
    try:  # the standard parser: a number no float holds is one bad key, not an unreadable file
        raw = json.loads(read_capped(Path(run_dir) / file, MAX_STATUS_BYTES))
    except (OSError, ValueError):
        return {}
    return Status.clean(raw) if isinstance(raw, dict) else {}


def read_status_record(run_dir: str | Path, *, file: str = STATUS) -> Status:
    """status.json as its typed record (every key None when absent or unreadable)."""
    return Status.of(read_status(run_dir, file=file))


def update_status(run_dir: str | Path, *, file: str = STATUS, **fields: Any) -> dict:
    """Merge fields (keys of ``Status``) into status.json (or ``file``) atomically; returns the new status."""
    updates = Status.check(fields)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with _status_lock(run_dir):
        status = read_status(run_dir, file=file)
        status.update(updates)
        status["updated_at"] = round(time.time(), 3)
        status.setdefault("host", socket.gethostname())
        atomic_write_text(run_dir / file, json.dumps(status, ensure_ascii=False, indent=1))
    return status
