"""TensorBoard event files read live: the scalars appended since the last read, by byte offset.

An event file is a TFRecord stream: each record is its length (uint64, little-endian), a masked CRC32C of
those 8 bytes, the serialized ``Event`` protobuf and a masked CRC32C of it. A record not yet wholly written
is left for the next read (never an error); a record whose checksum fails stops that file where it is and
is counted (``corrupt``), and is tried again once the file changes, so a writer caught mid-write on a slow
network filesystem is not mistaken for damage for long. A record longer than ``MAX_RECORD`` (an image or a
graph, never a scalar) is skipped after its length's checksum passes, without being read.

Why the framing is read here and not by TensorBoard's ``EventFileLoader``: TensorBoard (with grpcio, Pillow
and its data server, about 100 MB) would be the light install's largest part; without TensorFlow its loader
computes CRC32C in pure Python (about 8 MB/s measured, against GB/s for google-crc32c's C code), cannot start
at an offset, and reports a damaged record and a half-written one with the same exception. The records are
decoded by protobuf's C parser with TensorBoard's Event message as tb_proto.py declares it (no TensorFlow, and
not tensorboardX's copy, whose import brings torch where it is installed).

A long history is read newest first (``start_near_end``: the first record boundary at or after a byte is found
by the checksums of the length and the data), and older history afterwards (``read_older``), as ``RunReader``
reads events.jsonl.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import google_crc32c
from google.protobuf.message import DecodeError

from kidconsole.bounded import open_regular
from kidconsole.runs.scalars import ScalarSeries, series_key

PATTERN = "events.out.tfevents.*"
HEADER = 12               # length (8) + its masked CRC (4)
FOOTER = 4                # the data's masked CRC
MAX_RECORD = 16 << 20     # bytes: larger records are images, audio or graphs (skipped unread)
READ_BYTES = 32 << 20     # bytes read per call at most: a huge history loads over several polls
MAX_DEPTH = 4             # folders below a run's folder searched for event files (HF: runs/<date_host>/)
_MASK_DELTA = 0xA282EAD8


def masked_crc(data: bytes) -> int:
    """TFRecord's checksum: CRC32C, rotated right by 15 bits, plus a constant (mod 2**32)."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


Columns = dict[str, tuple[list[int], list[float], list[float]]]  # tag -> (steps, values, wall times)
MAX_TEXT = 64 << 10       # characters kept of a text summary (a writer's arguments)
MAX_TEXTS = 16            # text summaries kept per file
HEAD_BYTES = 16 << 10     # bytes of a file's head read for its text summaries when it is opened near its end


def _add_values(record: bytes, out: Columns, texts: dict[str, str], parse) -> float | None:
    """The scalar values of one serialized Event into ``out``: ``simple_value`` (PyTorch's and tensorboardX's
    writers) or a one-element float tensor (TensorFlow 2's); text summaries (a Trainer's arguments) into
    ``texts``; images and histograms are not charts. Returns the event's wall time."""
    try:
        ev = parse(record)
    except DecodeError:
        return None
    values = ev.summary.value
    if not values:
        return ev.wall_time
    step, wall = ev.step, ev.wall_time
    for v in values:
        kind = v.WhichOneof("value")
        if kind == "simple_value":
            value = v.simple_value
        elif kind == "tensor" and v.metadata.plugin_data.plugin_name in ("", "scalars"):
            value = _tensor_scalar(v.tensor)
            if value is None:
                continue
        else:
            if kind == "tensor" and v.metadata.plugin_data.plugin_name == "text":
                _add_text(v, texts)
            continue
        col = out.get(v.tag)
        if col is None:
            col = out[v.tag] = ([], [], [])
        col[0].append(step)
        col[1].append(value)
        col[2].append(wall)
    return wall


def _add_text(v, texts: dict[str, str]) -> None:
    tag = v.tag.removesuffix("/text_summary")  # PyTorch's and tensorboardX's add_text name it so
    if tag in texts or len(texts) >= MAX_TEXTS or not v.tensor.string_val:
        return
    texts[tag] = v.tensor.string_val[0][:MAX_TEXT * 4].decode("utf-8", errors="replace")[:MAX_TEXT]


_DT_FLOAT, _DT_DOUBLE = 1, 2


def _tensor_scalar(t) -> float | None:
    if t.tensor_shape.dim:
        return None
    if t.dtype == _DT_FLOAT:
        if t.float_val:
            return float(t.float_val[0])
        if len(t.tensor_content) == 4:
            return struct.unpack("<f", t.tensor_content)[0]
    if t.dtype == _DT_DOUBLE:
        if t.double_val:
            return float(t.double_val[0])
        if len(t.tensor_content) == 8:
            return struct.unpack("<d", t.tensor_content)[0]
    return None


def record_start(fh, lo: int, hi: int) -> int:
    """The first byte in [lo, hi) of ``fh`` where a record starts whose length and data both pass their
    checksums (a false start passes both with odds of 2**-64); ``hi`` when none does. Positions whose 8 bytes
    cannot be a length under 16 MiB are passed over without a checksum (numpy), so a scan costs little."""
    import numpy as np

    pos = lo
    while pos < hi:
        fh.seek(pos)
        window = min(hi - pos, 1 << 20)
        buf = fh.read(window + HEADER)
        a = np.frombuffer(buf, dtype=np.uint8)
        n = min(window, len(a) - HEADER + 1)
        if n <= 0:
            return hi
        zero = a == 0
        maybe = zero[3:n + 3] & zero[4:n + 4] & zero[5:n + 5] & zero[6:n + 6] & zero[7:n + 7]
        for i in np.flatnonzero(maybe).tolist():
            length, head_crc = struct.unpack_from("<QI", buf, i)
            if masked_crc(buf[i:i + 8]) != head_crc:
                continue
            at = pos + i
            if at + HEADER + length + FOOTER > hi:
                continue
            fh.seek(at + HEADER)
            body = fh.read(length + FOOTER)
            if len(body) == length + FOOTER and masked_crc(body[:length]) == struct.unpack_from("<I", body, length)[0]:
                return at
        pos += window
    return hi


class EventFileTail:
    """Reads the whole records appended to one event file since the last call (``read``). Opened
    ``start_near_end``, it reads only the newest records at first and the older ones afterwards, newest
    first, with ``read_older`` (a long history's chart is ready at once)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.offset = 0            # the first byte not yet consumed: a record's start
        self.backfill_end = 0      # bytes [0, backfill_end) not read yet: history older than what is in
        self.records = 0           # records read
        self.skipped = 0           # records over MAX_RECORD, passed over unread
        self.corrupt: str | None = None  # why the record at ``offset`` cannot be read (None: it is fine)
        self.damaged: str | None = None  # the last damaged stretch passed over in the older history
        self.resets = 0            # times the file shrank below the offset (rewritten) and was read again
        self.texts: dict[str, str] = {}  # text summaries by tag, first seen ("args": a Trainer's arguments)
        self._seen: tuple[int, int] | None = None  # (size, mtime_ns) when a record last failed its checksum

    @property
    def pending(self) -> bool:
        """Bytes of a record not yet wholly written wait at the end."""
        try:
            return self.corrupt is None and self.path.stat().st_size > self.offset
        except OSError:
            return False

    def start_near_end(self, nbytes: int) -> None:
        """Read the newest ``nbytes`` (from the first record that starts in them) first; what lies before
        is left to ``read_older``. The file's head is read for its text summaries at once."""
        try:
            fh = open(self.path, "rb")
        except OSError:
            return
        with fh:
            size = os.fstat(fh.fileno()).st_size
            if size <= nbytes:
                return
            records = self.records
            self._scan(fh.read(HEAD_BYTES), {}, _parser())  # only its texts are kept: the rest is read later
            self.records = records
            self.offset = self.backfill_end = record_start(fh, size - nbytes, size)

    def start_at_end(self) -> None:
        """All of the file so far is older history (``read_older``); ``read`` takes what is appended."""
        self.start_near_end(0)

    def read(self, max_bytes: int = READ_BYTES) -> Columns:
        """The scalars of the whole records appended since the last call, by tag (at most ``max_bytes`` read,
        or one record when it is larger)."""
        out: Columns = {}
        try:
            fh = open_regular(self.path)  # a FIFO would block the console's watcher for good
        except OSError:
            return out
        with fh:
            st = os.fstat(fh.fileno())
            if st.st_size < self.offset:  # rewritten: read it again from the start
                self.offset, self.backfill_end, self.corrupt, self._seen = 0, 0, None, None
                self.resets += 1
            if self.corrupt is not None:
                if self._seen == (st.st_size, st.st_mtime_ns):
                    return out
                self.corrupt = None  # the file changed: the record may be whole now
            fh.seek(self.offset)
            buf = fh.read(min(max_bytes, st.st_size - self.offset))
            parse = _parser()
            while True:
                pos, problem, need = self._scan(buf, out, parse, st.st_size - self.offset)
                # one record larger than a read's budget: read it whole
                if pos == 0 and need and self.offset + need <= st.st_size and len(buf) < need:
                    buf += fh.read(need - len(buf))
                    continue
                break
            if problem:
                self.corrupt = f"{problem} at byte {self.offset + pos}"
                self._seen = (st.st_size, st.st_mtime_ns)
            self.offset += pos
        return out

    def read_older(self, max_bytes: int = READ_BYTES) -> Columns:
        """The scalars of the next older stretch of history (about ``max_bytes``, whole records) before what is
        in, by tag in file order. A damaged stretch in it is passed over (``damaged`` says where): the records
        on either side are whole and read."""
        out: Columns = {}
        end = self.backfill_end
        if end <= 0:
            return out
        try:
            fh = open(self.path, "rb")
        except OSError:
            return out
        with fh:
            lo = max(0, end - max_bytes)
            start = record_start(fh, lo, end) if lo else 0
            while start >= end and lo > 0:  # one record longer than the stretch: widen it
                lo = max(0, lo - max_bytes)
                start = record_start(fh, lo, end) if lo else 0
            fh.seek(start)
            buf = fh.read(end - start)
            parse, pos = _parser(), 0
            while pos < len(buf):
                used, problem, _ = self._scan(buf[pos:], out, parse)
                pos += used
                if not problem:
                    break
                self.damaged = f"{problem} at byte {start + pos}"
                pos = record_start(fh, start + pos + 1, end) - start  # the next whole record after it
            self.backfill_end = start
        return out

    def _scan(self, buf: bytes, out: Columns, parse, avail: int | None = None) -> tuple[int, str | None, int]:
        """Whole records from the start of ``buf`` into ``out``: (bytes consumed, the problem that stopped the
        scan or None, the size of a record cut by the end of ``buf`` or 0). ``avail``: the bytes the file
        holds from ``buf``'s start (a record over ``MAX_RECORD`` that is whole in the file is passed over
        without being read)."""
        pos, records, size = 0, 0, len(buf)
        avail = size if avail is None else avail
        crc, unpack = masked_crc, struct.unpack_from
        problem, need = None, 0
        texts = self.texts
        while size - pos >= HEADER:
            length, head_crc = unpack("<QI", buf, pos)
            if crc(buf[pos:pos + 8]) != head_crc:
                problem = "a record's length fails its checksum"
                break
            end = pos + HEADER + length + FOOTER
            if length > MAX_RECORD:
                if end > avail:
                    break  # not wholly written yet
                self.skipped += 1
                pos = end
                continue
            if end > size:
                need = end - pos
                break  # the rest arrives later (or at the next read)
            data = buf[pos + HEADER:end - FOOTER]
            if crc(data) != unpack("<I", buf, end - FOOTER)[0]:
                problem = "a record fails its checksum"
                break
            _add_values(data, out, texts, parse)
            records += 1
            pos = end
        self.records += records
        return pos, problem, need


def _parser():
    from kidconsole.runs.tb_proto import Event  # protobuf: built when an event file is first read

    return Event.FromString


def event_files(folder: str | Path, max_depth: int = MAX_DEPTH) -> list[Path]:
    """The event files under ``folder`` (its subfolders to ``max_depth``), oldest writer first: a file's name
    carries its writer's start time, and a folder per writer (Hugging Face's ``runs/<date>_<host>``) sorts
    the same way."""
    folder = Path(folder)
    found: list[Path] = []
    stack = [(folder, 0)]
    while stack:
        here, depth = stack.pop()
        try:
            entries = list(os.scandir(here))
        except OSError:
            continue
        for e in entries:
            if e.name.startswith("events.out.tfevents.") and e.is_file(follow_symlinks=False):
                found.append(Path(e.path))
            elif depth < max_depth and e.is_dir(follow_symlinks=False):
                stack.append((Path(e.path), depth + 1))
    return sorted(found, key=_writer_order)


class TensorBoardTail:
    """Every event file under a folder, tailed into chart series (``ScalarSeries``); files that appear later
    (a resumed writer starts a new one) are picked up by the next ``poll``.

    ``newest_bytes``: at the first poll only the newest file's last ``newest_bytes`` are read, and each later
    poll loads up to ``older_bytes`` of older history (newest first, prepended) until all is in (``loading``
    turns False), as ``RunReader`` does with events.jsonl. None: every file is read from its start."""

    def __init__(self, folder: str | Path, *, newest_bytes: int | None = None, older_bytes: int = READ_BYTES):
        self.folder = Path(folder)
        self.newest_bytes = newest_bytes
        self.older_bytes = older_bytes
        self.files: dict[Path, EventFileTail] = {}
        self.scalars = ScalarSeries()
        self.tags: set[str] = set()
        self._opened = False

    @property
    def corrupt_files(self) -> list[EventFileTail]:
        return [f for f in self.files.values() if f.corrupt or f.damaged]

    @property
    def pending(self) -> bool:
        return any(f.pending for f in self.files.values())

    @property
    def loading(self) -> bool:
        """True while older history is still to be read."""
        return any(f.backfill_end > 0 for f in self.files.values())

    @property
    def texts(self) -> dict[str, str]:
        """The files' text summaries by tag, the newest writer's where several wrote one."""
        out: dict[str, str] = {}
        for tail in self.files.values():
            out.update(tail.texts)
        return out

    @property
    def started_at(self) -> float | None:
        """The oldest writer's start (an event file's name carries it), None when no name does."""
        for path in self.files:
            stamp = path.name.split(".")[3:4]
            if stamp and stamp[0].isdigit():
                return float(stamp[0])
        return None

    def poll(self, max_bytes: int = READ_BYTES) -> int:
        """New points from every file (at most ``max_bytes`` read in all, the rest at the next poll), then,
        after the first poll, a stretch of older history; returns the points read."""
        paths = event_files(self.folder)
        first = not self._opened
        self._opened = True
        for path in paths:
            if path not in self.files:
                tail = self.files[path] = EventFileTail(path)
                if first and self.newest_bytes is not None:
                    tail.start_near_end(self.newest_bytes) if path == paths[-1] else tail.start_at_end()
        self.files = {p: self.files[p] for p in sorted(self.files, key=_writer_order)}
        new = 0
        left = max_bytes
        for tail in self.files.values():
            if left <= 0:
                break
            before = tail.offset
            columns = tail.read(left)
            left -= tail.offset - before
            new += self._add(columns, self.scalars.add)
        if not first:
            older = next((t for t in reversed(self.files.values()) if t.backfill_end > 0), None)
            if older is not None:
                new += self._add(older.read_older(min(max_bytes, self.older_bytes)), self.scalars.prepend)
        return new

    def _add(self, columns: Columns, put) -> int:
        n = 0
        for tag, (steps, values, times) in columns.items():
            self.tags.add(tag)
            put(series_key(tag), steps, values, times)
            n += len(steps)
        return n


def _writer_order(path: Path) -> tuple:
    return (path.name.split(".")[3:4], str(path))
